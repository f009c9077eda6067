"""Live streams: what is wanted (StreamSpec), and the messages on the Redis streams.

Frame stream `…:frames:<name>`, one entry per frame (fields are bytes):
  seq    sequence number from 0, increasing by 1 per frame captured (gaps = frames trimmed or dropped)
  ts     capture timestamp, ns since the epoch (time.time_ns())
  w, h   frame size in pixels
  codec  "jpg" or "png"
  data   the encoded image

Track stream `…:tracks:<name>`, one entry per processed frame:
  seq, ts        the frame's
  pts            processing timestamp, ns since the epoch, when the tracks were appended
  tracks         JSON list of {"id", "box": [x1, y1, x2, y2], "class_id", "class_name", "conf"}

Capture status `…:capture:<name>` (hash, refreshed every heartbeat, expiring when the capture dies):
  worker, state (starting/running/reconnecting/failed/stopped/ended), error, fps, frames, reconnects,
  seq and ts of the last frame appended (ts: its capture time). "ended": a finite source played to its
  end; the stream is done and is not restarted.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vidfleet_common.errors import InputError

STREAM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CONSUMER_GROUP = "vidfleet-detectors"
HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TTL_SECONDS = 10  # a capture silent this long is dead: the reconciler starts it again
CODECS = ("jpg", "png")


class StreamSpec(BaseModel):
    """A wanted stream, as `vidfleet streams add` records it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Lowercase letters, digits, '-' and '_'; used in Redis keys and metric labels.")
    source: str = Field(description="Webcam index ('0'), a video file under the input roots, or an rtsp/http(s) URL.")
    fps: float | None = Field(None, gt=0, le=240, description="Frames per second to capture; None: the source's own rate.")
    retention_seconds: float = Field(10.0, gt=0, le=3600, description="Seconds of video the frame stream keeps (MAXLEN = fps x this).")
    codec: Literal["jpg", "png"] = "jpg"
    quality: int = Field(85, ge=1, le=100, description="JPEG quality.")
    width: int | None = Field(None, ge=16, le=8192, description="Resize frames to this width (height keeps the aspect).")
    realtime: bool = Field(True, description="Files play at their frame rate (a camera stand-in); false: as fast as possible.")
    loop: bool = Field(False, description="Files start over at their end.")
    count: int | None = Field(None, ge=1, description="Stop after this many frames.")
    policy: Literal["latest", "all"] = Field("latest", description="When the detector falls behind: skip to the newest frames, or process all.")
    config: dict[str, Any] = Field(default_factory=dict, description="Detection config (job config keys) for this stream.")
    max_events: int = Field(
        10_000, ge=100, le=10_000_000, description="Counting events the event stream keeps (MAXLEN ~): its retention."
    )
    webhook: str | None = Field(
        None, description="http(s) URL that receives the stream's counting events: a JSON POST per batch, retried with backoff."
    )

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
            raise ValueError(f"a webhook is an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not STREAM_NAME.match(value):
            raise ValueError("a stream name is 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit")
        return value

    def maxlen(self, source_fps: float | None = None) -> int:
        """Frames kept: seconds of video, never thousands of frames by accident."""
        fps = self.fps or source_fps or 30.0
        return max(16, math.ceil(fps * self.retention_seconds))


@dataclass(frozen=True)
class FrameMessage:
    seq: int
    ts: int
    width: int
    height: int
    codec: str
    data: bytes

    def fields(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "w": self.width, "h": self.height, "codec": self.codec, "data": self.data}

    @classmethod
    def from_fields(cls, raw: dict[Any, Any]) -> FrameMessage:
        values = {_text(k): v for k, v in raw.items()}
        missing = [k for k in ("seq", "ts", "w", "h", "codec", "data") if k not in values]
        if missing:
            raise InputError(f"frame message without {', '.join(missing)}")
        try:
            return cls(
                seq=int(values["seq"]), ts=int(values["ts"]), width=int(values["w"]), height=int(values["h"]),
                codec=_text(values["codec"]), data=bytes(values["data"]),
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"frame message with a bad field: {exc}") from None


@dataclass(frozen=True)
class Track:
    id: int
    box: tuple[float, float, float, float]
    class_id: int
    class_name: str
    conf: float

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "box": [round(v, 2) for v in self.box], "class_id": self.class_id, "class_name": self.class_name, "conf": round(self.conf, 4)}


@dataclass(frozen=True)
class TrackMessage:
    seq: int
    ts: int
    pts: int
    tracks: list[Track] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "pts": self.pts, "tracks": json.dumps([t.as_json() for t in self.tracks], separators=(",", ":"))}

    @classmethod
    def from_fields(cls, raw: dict[Any, Any]) -> TrackMessage:
        values = {_text(k): v for k, v in raw.items()}
        tracks = [
            Track(int(t["id"]), tuple(float(v) for v in t["box"]), int(t["class_id"]), str(t["class_name"]), float(t["conf"]))  # type: ignore[arg-type]
            for t in json.loads(values["tracks"])
        ]
        return cls(seq=int(values["seq"]), ts=int(values["ts"]), pts=int(values["pts"]), tracks=tracks)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def wanted_streams(redis: Any, registry_key: str) -> list[StreamSpec]:
    """The registry (hash name -> StreamSpec JSON), sorted by name; entries that no longer parse are skipped."""
    specs = []
    for raw in redis.hgetall(registry_key).values():
        try:
            specs.append(StreamSpec.model_validate_json(raw))
        except ValueError:
            continue
    return sorted(specs, key=lambda s: s.name)
