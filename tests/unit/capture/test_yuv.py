"""Frames kept as Y'CbCr planes: the JPEGs made from them look like OpenCV's, whatever the decoder outputs."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vidfleet_capture.avsource import AvReader
from vidfleet_capture.pipeline import Encoding
from vidfleet_capture.yuv import YuvImage
from vidfleet_common.streams import FrameMessage

SIZE = (320, 240)


def decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable image"
    return image


def opencv_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return decoded(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def write_clip(path: Path, source: Path, codec: str, pix_fmt: str, frames: int = 4) -> None:
    """`frames` frames of `source`, scaled to SIZE, encoded as `codec` in `pix_fmt` (what the decoder will output)."""
    capture = cv2.VideoCapture(str(source))
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=15)
        stream.width, stream.height = SIZE
        stream.pix_fmt = pix_fmt
        for _ in range(frames):
            ok, image = capture.read()
            assert ok
            frame = av.VideoFrame.from_ndarray(cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA), format="bgr24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    capture.release()


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "suffix", "full_range", "chroma"),
    [
        ("mpeg4", "yuv420p", "mp4", False, (120, 160)),  # video: limited range, converted to JPEG's full range
        ("mjpeg", "yuvj422p", "avi", True, (240, 160)),  # an MJPEG camera: full range, 4:2:2 kept
        ("mjpeg", "yuvj444p", "avi", True, (240, 320)),
        ("ffv1", "yuv420p10le", "mkv", True, (120, 160)),  # 10-bit: FFmpeg converts to 8-bit 4:2:0, full range
        ("rawvideo", "bgr24", "avi", True, (120, 160)),  # not Y'CbCr at all
    ],
)
def test_jpeg_from_the_planes_is_close_to_opencvs_on_the_same_frame(
    tmp_path: Path, capture_videos: dict[str, Path], codec: str, pix_fmt: str, suffix: str, full_range: bool, chroma: tuple[int, int]
) -> None:
    clip = tmp_path / f"clip.{suffix}"
    write_clip(clip, capture_videos["vga"], codec, pix_fmt)
    reader, opencv = AvReader(str(clip)), cv2.VideoCapture(str(clip))
    try:
        for _ in range(3):  # the third frame: past the first key frame
            ok, planes = reader.read()
            ok_cv, image = opencv.read()
            assert ok and ok_cv
    finally:
        reader.release()
        opencv.release()
    assert isinstance(planes, YuvImage)
    assert (planes.width, planes.height, planes.full_range, planes.u.shape) == (*SIZE, full_range, chroma)

    ours = decoded(planes.jpeg(90))
    assert ours.shape == image.shape
    # JPEG at quality 90 itself is ~1 level off on these frames; a missed range conversion is ~5 off.
    assert mean_diff(ours, opencv_jpeg(image, 90)) < 2.0
    assert mean_diff(ours, image) < mean_diff(opencv_jpeg(image, 90), image) + 1.0


def test_limited_range_is_stretched_to_full_range() -> None:
    y = np.array([[0, 16, 126, 235, 255, 128]], np.uint8)
    c = np.array([[17, 128, 240]], np.uint8)
    full = YuvImage(y, c, c, full_range=False).to_full_range()
    assert full.full_range and full.y.tolist() == [[0, 0, 128, 255, 255, 130]]
    assert full.u.tolist() == [[2, 128, 255]]
    image = YuvImage(y, c, c, full_range=True)
    assert image.to_full_range() is image


def test_encoding_resizes_planes_and_keeps_odd_sizes(capture_videos: dict[str, Path]) -> None:
    reader = AvReader(str(capture_videos["vga"]))
    _, planes = reader.read()
    reader.release()
    assert isinstance(planes, YuvImage)
    _, reference = cv2.VideoCapture(str(capture_videos["vga"])).read()

    fields = Encoding("jpg", 90, width=333).encode(4, 5, planes)
    message = FrameMessage.from_fields(fields)
    assert (message.seq, message.ts, message.width, message.height, message.codec) == (4, 5, 333, 250, "jpg")
    ours = decoded(message.data)
    assert ours.shape == (250, 333, 3)
    assert mean_diff(ours, cv2.resize(reference, (333, 250), interpolation=cv2.INTER_AREA)) < 3.0

    png = FrameMessage.from_fields(Encoding("png", width=160).encode(0, 0, planes))
    assert (png.codec, decoded(png.data).shape) == ("png", (120, 160, 3))


@pytest.mark.parametrize(
    ("planes", "message"),
    [
        ((np.zeros((4, 4), np.uint8), np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8)), "U and V planes differ"),
        ((np.zeros((4, 4), np.float32), np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)), "YuvImage.y: expected a 2-D uint8 plane, got float32"),
        ((np.zeros((2, 2), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)), "chroma (4, 4) larger than luma (2, 2)"),
    ],
)
def test_bad_planes_say_what_is_wrong(planes: tuple[np.ndarray, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        YuvImage(*planes, full_range=True)
