"""Decode a video ahead of the model, in a thread, into a bounded queue.

The model is the slow stage; decoding runs beside it so that the model never waits for a frame.
Shutdown is a sentinel on the queue; the consumer can stop the reader early with `close()`.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import numpy as np

# FFmpeg and OpenCV would print their own warnings for every unreadable file; ours is the one line.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# An HTTP read that breaks off (an endpoint restarting, a connection reset) is resumed by FFmpeg itself at the
# byte where it stopped, with backoff (0, 1, 3, 7, 15 s): the frames stay exact. Unused for local files.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "reconnect;1|reconnect_on_network_error;1|reconnect_delay_max;20")
import cv2  # noqa: E402

from vidfleet_common.buckets import is_s3
from vidfleet_common.errors import EmptyVideoError, VideoError, VideoOpenError

_END = object()
_NETWORK_TIMEOUT_MS = 60_000  # longer than FFmpeg's reconnects (26 s)
# Past FFmpeg's own reconnects, an s3:// read that ends before the container's frame count is reopened at the
# frame where it stopped, with a freshly signed URL (an expired one, say), this many times before the video fails.
RESUME_ATTEMPTS = 4
RESUME_BACKOFF_S = 1.0


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


def _open_capture(source: str, display: str | None = None) -> cv2.VideoCapture:
    shown = display or source
    is_url = "://" in source
    if is_s3(source):
        from vidfleet_detector.s3_input import signed_url

        source = signed_url(source)  # raises the one line: no such object, access denied, endpoint down...
    elif is_url:
        refused = _unreachable(source)
        if refused:
            raise VideoOpenError(f"{shown}: could not open the URL ({refused})")
    else:
        path = Path(source)
        if not path.exists():
            raise VideoOpenError(f"{source}: no such file")
        if path.is_file() and path.stat().st_size == 0:
            raise VideoOpenError(f"{source}: file is empty (0 bytes)")
        if not os.access(path, os.R_OK):
            raise VideoOpenError(f"{source}: permission denied")
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _NETWORK_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, _NETWORK_TIMEOUT_MS] if is_url else []
    capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
    if not capture.isOpened():
        capture.release()
        what = "could not open the URL (unreachable, or not a video)" if is_url else "not a readable video (no decodable video stream; truncated or not a video file?)"
        if is_s3(shown):
            what = "not a readable video (no decodable video stream; truncated or not a video?)"
        raise VideoOpenError(f"{shown}: {what}")
    return capture


def _unreachable(url: str) -> str | None:
    """Why an http(s) URL's server refuses us outright, checked before FFmpeg, whose reconnects would spend
    ~26 s retrying a refused connection; None when it answers or is merely slow (FFmpeg then decides)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        with socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)), timeout=5):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except socket.gaierror:
        return f"unknown host {parts.hostname}"
    except OSError:
        return None


def _info(capture: cv2.VideoCapture) -> VideoInfo:
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return VideoInfo(
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=fps if fps and fps > 0 and fps < 1000 else None,
        total_frames=count if count > 0 else None,
    )


class BackgroundFrames:
    """Frames decoded by a subclass's `_run` on a background thread, handed over through a bounded queue.

    `_run` puts DecodedFrames, then a VideoError or nothing, and finally calls `_end()` (`_put` gives up
    once `close()` was called). Iterating yields the frames in order and raises the error where it came.
    """

    _display: str

    def _start(self, buffer: int, name: str) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, buffer))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        raise NotImplementedError

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _end(self) -> None:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FrameReader(BackgroundFrames):
    """Reads every `stride`-th frame of `source` on a background thread.

    Iterate to get DecodedFrames in order; `frames_read` counts every frame read, processed or not.
    Opening happens in the constructor so that an unreadable video fails before any output exists.
    """

    def __init__(self, source: str, *, stride: int = 1, buffer: int = 8, display: str | None = None) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self._display = display or source
        self._source = source
        self._capture = _open_capture(source, self._display)
        self.info = _info(self._capture)
        self._stride = stride
        self.frames_read = 0
        self._start(buffer, "vidfleet-decode")

    def _run(self) -> None:
        try:
            index = 0
            while not self._stop.is_set():
                if index % self._stride:
                    if not self._capture.grab() and not (self._can_resume(index) and self._resume(index) is not None):
                        break
                else:
                    ok, image = self._capture.read()
                    if (not ok or image is None) and self._can_resume(index):
                        image = self._resume(index)
                    if image is None:
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
            self._end()

    def _can_resume(self, index: int) -> bool:
        return is_s3(self._source) and self.info.total_frames is not None and index < self.info.total_frames and not self._stop.is_set()

    def _resume(self, index: int) -> np.ndarray | None:
        """Reopen the object at frame `index` (a fresh signed URL each time). None: it reopened but holds no more
        frames (a truncated object: the short read is reported as for a file). Raises once the attempts are spent."""
        last: Exception | None = None
        for attempt in range(RESUME_ATTEMPTS):
            if self._stop.wait(RESUME_BACKOFF_S * 2**attempt):
                return None
            try:
                capture = _open_capture(self._source, self._display)
            except VideoOpenError as exc:
                last = exc
                continue
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, image = capture.read()
            self._capture.release()
            self._capture = capture
            return image if ok else None
        raise VideoError(
            f"{self._display}: reading stopped at frame {index} of {self.info.total_frames} and the object could not be "
            f"read again ({RESUME_ATTEMPTS} attempts with backoff): {str(last).removeprefix(self._display + ': ')}"
        )
