"""The shape of a job's `result.json` and of each video's summary (what a detect task returns)."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vidfleet_common.chunks import SplitSummary
from vidfleet_common.counts import Counts

RESULT_FILE = "result.json"


class VideoOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class VideoOutputs(BaseModel):
    """Output files of one video, relative to the job's output folder."""

    model_config = ConfigDict(extra="forbid")

    tracks: str | None = None
    detections: str | None = None
    annotated: str | None = None
    events: str | None = None


class VideoResult(BaseModel):
    """What happened to one video."""

    model_config = ConfigDict(extra="forbid")

    video: str = Field(description="The input as given (path or URL, credentials scrubbed).")
    name: str = Field(description="Output stem: <name>.tracks.txt and so on.")
    outcome: VideoOutcome
    error: str | None = Field(None, description="Why it failed, one line.")
    error_kind: str | None = Field(None, description="Machine-readable failure class.")
    warning: str | None = Field(None, description="Something odd that did not fail the video, one line.")
    frames: int = Field(0, description="Frames read from the video.")
    frames_processed: int = Field(0, description="Frames run through the model (every skip_frames-th).")
    total_frames: int | None = Field(None, description="Frame count the container reports, when it does.")
    video_fps: float | None = None
    width: int | None = None
    height: int | None = None
    detections: int = 0
    tracks: int = Field(0, description="Distinct track ids reported.")
    track_rows: int = Field(0, description="Rows in the tracks file.")
    seconds: float = Field(0.0, description="Wall-clock seconds spent on this video.")
    fps: float = Field(0.0, description="Frames read per wall-clock second.")
    outputs: VideoOutputs = Field(default_factory=VideoOutputs)
    counts: Counts | None = Field(None, description="What the config's lines and zones counted (null without any).")
    worker: str | None = Field(None, description="The fleet worker that processed it (absent for `vidfleet process`).")
    attempts: int = Field(1, description="Times a worker started this video: 2 or more when it was given back after its worker died.")
    split: SplitSummary | None = Field(None, description="A video processed as chunks (split_seconds): the chunks and the stitching.")

    @property
    def ok(self) -> bool:
        return self.outcome is VideoOutcome.SUCCEEDED


class JobResult(BaseModel):
    """The job's `result.json`."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    success: bool
    state: str = Field(description="succeeded, partial, failed or cancelled.")
    message: str
    videos: list[VideoResult]
    counts: Counts | None = Field(None, description="The videos' counts summed (null when the config has no lines or zones).")
    config: dict[str, Any]
    versions: dict[str, str]
    timings: dict[str, float]
    started_at: str
    finished_at: str


def job_state(videos: list[VideoResult]) -> str:
    """succeeded when every video did, failed when none did, partial between; cancelled wins."""
    outcomes = {v.outcome for v in videos}
    if VideoOutcome.CANCELLED in outcomes:
        return "cancelled"
    if not videos or outcomes == {VideoOutcome.FAILED}:
        return "failed"
    if outcomes == {VideoOutcome.SUCCEEDED}:
        return "succeeded"
    return "partial"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Versions that change results: vidfleet, Python and the libraries under the model (where installed)."""
    found = {"python": platform.python_version()}
    for label, dists in {
        "vidfleet-common": ("vidfleet-common",),
        "vidfleet-detector": ("vidfleet-detector",),
        "torch": ("torch",),
        "ultralytics": ("ultralytics-opencv-headless", "ultralytics"),
        "opencv": ("opencv-python-headless", "opencv-python"),
        "numpy": ("numpy",),
    }.items():
        for dist in dists:
            try:
                found[label] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def write_result(result: JobResult, out_dir: Path | str) -> Path | str:
    """Write `result.json` atomically: a temporary name then a rename, or one PUT under an s3:// prefix
    (an object appears whole or not at all). Returns where it is."""
    text = json.dumps(result.model_dump(mode="json"), indent=2) + "\n"
    if isinstance(out_dir, str) and out_dir[:5].lower() == "s3://":
        from vidfleet_common.buckets import S3Url
        from vidfleet_common.objects import default_store

        target = S3Url.parse(out_dir).child(RESULT_FILE)
        default_store().put_bytes(text.encode(), target, content_type="application/json")
        return str(target)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / RESULT_FILE
    temp = out_dir / f".tmp-{os.getpid()}-{RESULT_FILE}"
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, final)
    return final
