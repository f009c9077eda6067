"""One long video as overlapping chunks: the probe (PyAV, demux only) and the chunk plan.

A chunk owns the frames [start, end) of the video: every frame is owned by exactly one chunk, and the
chunk's outputs for those frames are the ones the stitched result keeps. A chunk reads from `read_from`,
a keyframe at least `split_overlap_seconds` before `start` (0 for the first chunk): in those lead-in
frames its tracker warms up (SORT's `min_hits`, the counter's sides) and its tracks are matched with
the previous chunk's (vidfleet_detector.split.stitch). The owner of a lead-in frame is the previous
chunk, whose tracker is warm there.

Frame indices are positions in presentation order, from 0 (the detector's `DecodedFrame.index`). A
chunk reader finds a frame's index from its timestamp, `(pts - first_pts) / frame_pts`: the probe
splits only constant-frame-rate videos whose timestamps are exactly that (checked on every packet).

PyAV is imported only by `probe_video`: this package stays light for the services that never probe.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from vidfleet_common.errors import VideoError

CHUNK_MARK = ".chunk"
STITCH_MARK = ".stitch"
RENDER_MARK = ".render"


class Chunk(BaseModel):
    """One chunk of a split video, as a detect task receives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0)
    count: int = Field(ge=1, description="Chunks of the video.")
    start: int = Field(ge=0, description="First frame this chunk owns.")
    end: int = Field(ge=1, description="One past the last frame it owns.")
    read_from: int = Field(ge=0, description="First frame it reads (a keyframe; the lead-in is [read_from, start)).")
    seek_pts: int = Field(description="Timestamp of frame read_from, in the stream's time base.")
    first_pts: int = Field(description="Timestamp of frame 0.")
    frame_pts: float = Field(gt=0, description="Timestamp units per frame.")
    fps: float = Field(gt=0)

    @property
    def start_seconds(self) -> float:
        return self.start / self.fps

    @property
    def end_seconds(self) -> float:
        return self.end / self.fps

    @property
    def frames(self) -> int:
        return self.end - self.start

    def span(self) -> str:
        """'chunk 3/8 (00:30:00-00:45:00)', for error messages and logs."""
        return f"chunk {self.index + 1}/{self.count} ({clock(self.start_seconds)}-{clock(self.end_seconds)})"


@dataclass(frozen=True)
class VideoProbe:
    """What the demuxer says about a video's first video stream."""

    frames: int
    fps: float
    first_pts: int
    frame_pts: float
    keyframes: tuple[int, ...]  # frame indices, ascending
    constant_rate: bool

    @property
    def duration(self) -> float:
        return self.frames / self.fps


class ProbeError(VideoError):
    kind = "video"


def clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def chunk_unit(name: str, index: int) -> str:
    """The name a chunk goes by in the job record and its files: `<video>.chunk003`."""
    return f"{name}{CHUNK_MARK}{index:03d}"


def stitch_unit(name: str) -> str:
    """The stitch of a video whose annotated parts are drawn next (visualize); otherwise the stitch is the video's."""
    return f"{name}{STITCH_MARK}"


def render_unit(name: str, index: int) -> str:
    """The drawing of a chunk's part of the annotated video: `<video>.render003`."""
    return f"{name}{RENDER_MARK}{index:03d}"


def probe_video(source: str, *, display: str | None = None) -> VideoProbe:
    """Demux (no decoding) every packet of the first video stream. Raises ProbeError in one line."""
    import av  # noqa: PLC0415 - heavy, and only the services that split need it

    shown = display or source
    try:
        container = av.open(source)
    except (av.FFmpegError, OSError) as exc:
        raise ProbeError(f"{shown}: cannot probe for splitting: {exc}") from None
    try:
        if not container.streams.video:
            raise ProbeError(f"{shown}: no video stream")
        stream = container.streams.video[0]
        pts: list[int] = []
        key_pts: list[int] = []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                key_pts.append(packet.pts)
        rate = stream.average_rate or stream.guessed_rate
    except av.FFmpegError as exc:
        raise ProbeError(f"{shown}: cannot probe for splitting: {exc}") from None
    finally:
        container.close()
    if not pts:
        raise ProbeError(f"{shown}: video has no frames")
    pts.sort()
    first = pts[0]
    if len(pts) > 1:
        frame_pts = (pts[-1] - first) / (len(pts) - 1)
    else:
        frame_pts = float(1 / (rate * stream.time_base)) if rate else 1.0
    constant = all(round((p - first) / frame_pts) == i and abs((p - first) - i * frame_pts) < 0.25 * frame_pts for i, p in enumerate(pts))
    fps = float(1 / (frame_pts * stream.time_base)) if stream.time_base else float(rate or 25)
    positions = {p: i for i, p in enumerate(pts)}
    keyframes = tuple(sorted({positions[p] for p in key_pts if p in positions})) or (0,)
    return VideoProbe(frames=len(pts), fps=fps, first_pts=first, frame_pts=frame_pts, keyframes=keyframes, constant_rate=constant)


def plan_chunks(probe: VideoProbe, split_seconds: float, overlap_seconds: float) -> list[Chunk]:
    """Chunks of about `split_seconds` owning every frame once; [] when the video is shorter than two chunks
    or cannot be split exactly (variable frame rate)."""
    per_chunk = max(1, round(split_seconds * probe.fps))
    count = probe.frames // per_chunk
    if count < 2 or not probe.constant_rate:
        return []
    overlap = max(0, math.ceil(overlap_seconds * probe.fps))
    chunks: list[Chunk] = []
    for index in range(count):
        start = index * per_chunk
        end = probe.frames if index == count - 1 else start + per_chunk  # the last one takes the remainder
        wanted = max(0, start - overlap)
        at = bisect.bisect_right(probe.keyframes, wanted) - 1
        read_from = probe.keyframes[at] if at >= 0 else 0
        chunks.append(
            Chunk(
                index=index, count=count, start=start, end=end, read_from=read_from,
                seek_pts=probe.first_pts + round(read_from * probe.frame_pts), first_pts=probe.first_pts,
                frame_pts=probe.frame_pts, fps=probe.fps,
            )
        )
    return chunks


def why_not_split(probe: VideoProbe, split_seconds: float) -> str:
    """The one line saying why `plan_chunks` gave no chunks."""
    if not probe.constant_rate:
        return "variable frame rate: processed whole (a chunk could not find its frames by timestamp)"
    return f"{probe.duration:.0f} s is shorter than two chunks of {split_seconds:g} s: processed whole"


class BoundaryStats(BaseModel):
    """How the tracks of one chunk joined those of the chunk before it."""

    model_config = ConfigDict(extra="forbid")

    chunk: int = Field(description="The later chunk's index (0: the first chunk, whose tracks are all new).")
    matched: int = Field(0, description="Its tracks that continue a track of the previous chunk (same id).")
    new: int = Field(0, description="Its tracks that got a new id.")
    ended: int = Field(0, description="Tracks of the previous chunk alive at its end that no track continues.")


class ChunkSummary(BaseModel):
    """One chunk in result.json."""

    model_config = ConfigDict(extra="forbid")

    index: int
    start_s: float
    end_s: float
    frames: int = Field(description="Frames it owns.")
    frames_read: int = Field(description="Frames it decoded, lead-in included.")
    outcome: str
    error: str | None = None
    seconds: float = 0.0
    worker: str | None = None
    attempts: int = 1
    outputs: dict[str, str] = Field(default_factory=dict, description="Its own files, when kept (save_intermediate_results).")


class SplitSummary(BaseModel):
    """How a split video was processed: its chunks and the stitching."""

    model_config = ConfigDict(extra="forbid")

    split_seconds: float
    overlap_seconds: float
    chunks: list[ChunkSummary]
    boundaries: list[BoundaryStats] = Field(default_factory=list)
    stitch_seconds: float = 0.0
    render_seconds: float = Field(0.0, description="Drawing the chunks' parts of the annotated video (summed) and joining them.")
    events_dropped: int = Field(0, description="Zone events of a chunk that contradicted the stitched state (a repeated enter).")


def plan_source(source: str, split_seconds: float | None, overlap_seconds: float, *, display: str | None = None) -> tuple[list[Chunk], str | None]:
    """The chunks of a video ([] to process it whole) and, when it is not split, why (a warning for its result)."""
    if split_seconds is None:
        return [], None
    try:
        probe = probe_video(source, display=display)
    except ProbeError as exc:
        return [], f"not split: {exc}"  # processed whole: the decoder then reports what is wrong with it
    chunks = plan_chunks(probe, split_seconds, overlap_seconds)
    return chunks, None if chunks else f"not split: {why_not_split(probe, split_seconds)}"
