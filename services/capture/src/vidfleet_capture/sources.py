"""What a capture reads: a webcam index, a video file inside the input roots, or a camera URL.

`parse_source` refuses what must never be opened (a scheme that is not allowed, a path outside
the input roots) before FFmpeg sees it; `open_source` opens it and reads the first frame, so that
"cannot be opened" covers a file that is not a video and a URL that answers with nothing.

Two readers, one interface (`read`, `grab`, `release`): `cv2.VideoCapture` gives BGR images (webcams,
and every source when frames are not JPEG); `AvReader` gives the decoder's planes (`YuvImage`), which a
JPEG encoder takes without converting colours twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeAlias
from urllib.parse import urlsplit

import av.error
import numpy as np

from vidfleet_capture.avsource import AvReader
from vidfleet_capture.opencv import cv2
from vidfleet_capture.yuv import YuvImage
from vidfleet_common.errors import InputError, VideoOpenError
from vidfleet_common.inputs import inside_roots
from vidfleet_common.settings import Settings, scrub_url

# Cameras speak RTSP; http(s) serves MJPEG cameras and files. Settings' allowed_url_schemes adds to these.
# The same default the coordinator checks stream sources against (VIDFLEET_STREAM_URL_SCHEMES).
CAMERA_URL_SCHEMES: tuple[str, ...] = tuple(Settings.model_fields["stream_url_schemes"].default)
OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 10_000

SourceKind = Literal["webcam", "file", "url"]
Image: TypeAlias = "np.ndarray | YuvImage"


class VideoReader(Protocol):
    """What the pipeline reads from: `cv2.VideoCapture` or `AvReader`."""

    def read(self) -> tuple[bool, Image | None]: ...

    def grab(self) -> bool: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    target: int | str  # webcam index, resolved file path, or URL
    display: str  # safe for logs: credentials scrubbed

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    @property
    def is_live(self) -> bool:
        """A camera paces itself: never slowed down, frames dropped by time when fewer are wanted."""
        return self.kind == "webcam" or (self.kind == "url" and str(self.target).lower().startswith("rtsp"))

    def exists(self) -> bool:
        """False when a file source has vanished (moved or deleted); always True for cameras."""
        return not self.is_file or os.path.isfile(self.target)


def parse_source(text: str, *, input_roots: Sequence[Path] = (), url_schemes: Iterable[str] = CAMERA_URL_SCHEMES) -> Source:
    """Classify and check `text`; raises InputError with the one line the user sees."""
    text = str(text).strip()
    if not text:
        raise InputError("source is empty: give a webcam index ('0'), a video file or an rtsp/http(s) URL")
    if text.isdigit():
        return Source("webcam", int(text), f"webcam {int(text)}")
    if "://" in text:
        parts = urlsplit(text)
        allowed = tuple(dict.fromkeys(s.lower() for s in url_schemes))
        shown = scrub_url(text)
        if parts.scheme.lower() not in allowed:
            raise InputError(f"{shown}: URL scheme '{parts.scheme}' is not allowed (allowed: {', '.join(allowed)})")
        if not parts.hostname:
            raise InputError(f"{shown}: URL has no host")
        return Source("url", text, shown)
    path = Path(text).expanduser()
    if input_roots and not inside_roots(path, input_roots):
        roots = ", ".join(str(r) for r in input_roots)
        raise InputError(f"{text}: outside the input roots ({roots})")
    if path.is_dir():
        raise InputError(f"{text}: is a folder, not a video file")
    return Source("file", str(path.resolve()), text)


def open_source(source: Source, *, yuv: bool = False) -> tuple[VideoReader, Image]:
    """Open `source` and read its first frame; raises VideoOpenError (one line) when either fails.

    `yuv`: frames as planes (`YuvImage`) where the source allows it (not a webcam index), else BGR arrays.
    """
    if source.is_file:
        path = Path(str(source.target))
        if not path.exists():
            raise VideoOpenError(f"{source.display}: no such file")
        if path.stat().st_size == 0:
            raise VideoOpenError(f"{source.display}: file is empty (0 bytes)")
        if not os.access(path, os.R_OK):
            raise VideoOpenError(f"{source.display}: permission denied")
    reader = _open_planar(source) if yuv and source.kind != "webcam" else _open_bgr(source)
    ok, image = reader.read()
    if not ok or image is None:
        reader.release()
        what = "video has no frames" if source.is_file else "opened, but no frame could be read"
        raise VideoOpenError(f"{source.display}: {what}")
    return reader, image


def _open_bgr(source: Source) -> cv2.VideoCapture:
    if source.is_file:
        capture = cv2.VideoCapture(str(source.target), cv2.CAP_FFMPEG)
    elif source.kind == "url":
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        capture = cv2.VideoCapture(str(source.target), cv2.CAP_FFMPEG, params)
    else:
        capture = cv2.VideoCapture(int(source.target))
    if not capture.isOpened():
        capture.release()
        raise VideoOpenError(f"{source.display}: {_why_not_opened(source)}")
    return capture


def _open_planar(source: Source) -> AvReader:
    target = str(source.target)
    try:
        return AvReader(
            target, url=source.kind == "url", rtsp=target.lower().startswith("rtsp"),
            timeouts=(OPEN_TIMEOUT_MS / 1000, READ_TIMEOUT_MS / 1000),
        )
    except (av.error.FFmpegError, OSError, LookupError):
        raise VideoOpenError(f"{source.display}: {_why_not_opened(source)}") from None


def _why_not_opened(source: Source) -> str:
    if source.kind == "webcam":
        return f"no such camera (cannot open /dev/video{source.target})"
    if source.kind == "url":
        return "could not open the URL (unreachable, or not a video)"
    return "not a readable video (no decodable video stream; truncated or not a video file?)"


def source_fps(reader: VideoReader) -> float | None:
    """The frame rate the source declares, or None when it does not say (or says nonsense)."""
    if isinstance(reader, AvReader):
        return reader.fps
    fps = reader.get(cv2.CAP_PROP_FPS)  # type: ignore[attr-defined]
    return float(fps) if fps and 0 < fps < 1000 else None
