"""Files and camera URLs read with PyAV: frames come out as the decoder's Y'CbCr planes (`YuvImage`).

The same FFmpeg that OpenCV wraps, minus the conversion to BGR that a JPEG encoder would undo.
`AvReader` reads like `cv2.VideoCapture` (`read`, `grab`, `release`) so that the pipeline drives
either; `open_source` picks it for JPEG frames from anything but a webcam index.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import av.error
import numpy as np

from vidfleet_capture.yuv import YuvImage

# Planar 8-bit formats whose planes a JPEG takes as they are; anything else is converted to yuv420p first.
_PLANAR = {f"yuv{j}{s}p" for j in ("", "j") for s in ("420", "422", "444")}
_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG


class AvReader:
    """One opened source. Raises av.error.FFmpegError (or OSError) when it cannot be opened, LookupError without video."""

    def __init__(self, target: str, *, url: bool = False, rtsp: bool = False, timeouts: tuple[float, float] | None = None) -> None:
        options = {"rtsp_transport": "tcp"} if rtsp else {}  # as OpenCV's FFmpeg backend does: no lost UDP packets
        self._container = av.open(target, options=options, timeout=timeouts if url else None)
        try:
            if not self._container.streams.video:
                raise LookupError("no video stream")
            self._stream = self._container.streams.video[0]
            # Slice threads only: frame threads would add frames of latency and CPU (measured: ~10 % more per
            # frame), and the pipeline already decodes on its own core beside the encoders.
            self._stream.thread_type = "SLICE"
            rate = self._stream.guessed_rate or self._stream.average_rate
            self.fps: float | None = float(rate) if rate and 0 < float(rate) < 1000 else None
        except BaseException:
            self._container.close()
            raise
        self._frames = self._decoded()

    def _decoded(self) -> Iterator[av.VideoFrame]:
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # a damaged packet: skipped, as OpenCV skips it
            yield from frames

    def grab(self) -> bool:
        """Decode the next frame and drop it."""
        return self._next() is not None

    def read(self) -> tuple[bool, YuvImage | None]:
        frame = self._next()
        if frame is None:
            return False, None
        return True, planes(frame)

    def _next(self) -> av.VideoFrame | None:
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except (av.error.FFmpegError, OSError):  # the connection dropped, the file was cut: the source ended
            return None

    def release(self) -> None:
        self._container.close()


def planes(frame: av.VideoFrame) -> YuvImage:
    """The frame's planes, as views of its buffers (no copy) when the format is one a JPEG takes."""
    name = frame.format.name
    if name not in _PLANAR:  # RGB, 10-bit, semi-planar (NV12) ...: FFmpeg converts, to full range at once
        frame = frame.reformat(format="yuv420p", dst_color_range="JPEG")
        y, u, v = (_view(p) for p in frame.planes[:3])
        return YuvImage(y, u, v, full_range=True)
    y, u, v = (_view(p) for p in frame.planes[:3])
    return YuvImage(y, u, v, full_range=name.startswith("yuvj") or frame.color_range == _JPEG_RANGE)


def _view(plane: av.video.plane.VideoPlane) -> np.ndarray:
    # Rows are padded to line_size bytes; the view skips the padding (the JPEG encoder takes strided planes).
    rows = np.frombuffer(plane, np.uint8, count=plane.height * plane.line_size)
    return rows.reshape(plane.height, plane.line_size)[:, : plane.width]
