"""Decode a video ahead of the model, in a thread, into a bounded queue.

The model is the slow stage; decoding runs beside it so that the model never waits for a frame.
Shutdown is a sentinel on the queue; the consumer can stop the reader early with `close()`.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# FFmpeg and OpenCV would print their own warnings for every unreadable file; ours is the one line.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
import cv2  # noqa: E402

from vidfleet_common.errors import EmptyVideoError, VideoError, VideoOpenError

_END = object()


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float | None
    total_frames: int | None


@dataclass(frozen=True)
class DecodedFrame:
    index: int  # 0-based position in the video
    image: np.ndarray


def _open_capture(source: str) -> cv2.VideoCapture:
    is_url = "://" in source
    if not is_url:
        path = Path(source)
        if not path.exists():
            raise VideoOpenError(f"{source}: no such file")
        if path.is_file() and path.stat().st_size == 0:
            raise VideoOpenError(f"{source}: file is empty (0 bytes)")
        if not os.access(path, os.R_OK):
            raise VideoOpenError(f"{source}: permission denied")
    capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        what = "could not open the URL (unreachable, or not a video)" if is_url else "not a readable video (no decodable video stream; truncated or not a video file?)"
        raise VideoOpenError(f"{source}: {what}")
    return capture


def _info(capture: cv2.VideoCapture) -> VideoInfo:
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return VideoInfo(
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=fps if fps and fps > 0 and fps < 1000 else None,
        total_frames=count if count > 0 else None,
    )


class FrameReader:
    """Reads every `stride`-th frame of `source` on a background thread.

    Iterate to get DecodedFrames in order; `frames_read` counts every frame read, processed or not.
    Opening happens in the constructor so that an unreadable video fails before any output exists.
    """

    def __init__(self, source: str, *, stride: int = 1, buffer: int = 8, display: str | None = None) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self._display = display or source
        self._capture = _open_capture(source)
        self.info = _info(self._capture)
        self._stride = stride
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, buffer))
        self._stop = threading.Event()
        self.frames_read = 0
        self._thread = threading.Thread(target=self._run, name="vidfleet-decode", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            index = 0
            while not self._stop.is_set():
                if index % self._stride:
                    if not self._capture.grab():
                        break
                else:
                    ok, image = self._capture.read()
                    if not ok or image is None:
                        break
                    if not self._put(DecodedFrame(index, image)):
                        break
                index += 1
                self.frames_read = index
            if index == 0:
                raise EmptyVideoError(f"{self._display}: video has no frames")
        except VideoError as exc:
            self._put(exc)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which reports it
            self._put(VideoError(f"{self._display}: decoding failed: {exc}"))
        finally:
            self._capture.release()
            self._put(_END)

    def __iter__(self) -> Iterator[DecodedFrame]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop decoding (for an early stop) and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
