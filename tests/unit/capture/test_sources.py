"""Sources: what is refused before OpenCV sees it, and the one line for each source that cannot be opened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidfleet_capture.sources import CAMERA_URL_SCHEMES, Source, open_source, parse_source, source_fps
from vidfleet_capture.yuv import YuvImage
from vidfleet_common.errors import InputError, VideoOpenError


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("0", "webcam", 0),
        (" 3 ", "webcam", 3),
        ("rtsp://user:pw@cam.local:554/stream1", "url", "rtsp://user:pw@cam.local:554/stream1"),
        ("https://example.com/live.mjpg", "url", "https://example.com/live.mjpg"),
    ],
)
def test_sources_are_classified(text: str, kind: str, target: object) -> None:
    source = parse_source(text)
    assert (source.kind, source.target) == (kind, target)
    assert "pw" not in source.display


def test_a_file_resolves_and_must_be_inside_the_input_roots(tmp_path: Path) -> None:
    inside = tmp_path / "in" / "cam.mp4"
    inside.parent.mkdir()
    inside.write_bytes(b"x")
    assert parse_source(str(inside), input_roots=[tmp_path / "in"]) == Source("file", str(inside.resolve()), str(inside))
    with pytest.raises(InputError, match=r"outside the input roots"):
        parse_source(str(tmp_path / "in" / ".." / "other.mp4"), input_roots=[tmp_path / "in"])
    with pytest.raises(InputError, match="is a folder, not a video file"):
        parse_source(str(tmp_path / "in"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://cam.local/video.mp4", "ftp://cam.local/video.mp4: URL scheme 'ftp' is not allowed (allowed: rtsp, rtsps, http, https)"),
        ("file:///etc/passwd", "URL scheme 'file' is not allowed"),
        ("rtsp://", "URL has no host"),
        ("", "source is empty"),
    ],
)
def test_refused_sources_say_why(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_source(text, url_schemes=CAMERA_URL_SCHEMES)


def test_credentials_never_reach_the_error() -> None:
    with pytest.raises(InputError) as caught:
        parse_source("smb://admin:hunter2@nas/cam")
    assert "hunter2" not in str(caught.value) and "***@nas" in str(caught.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: str(d / "missing.mp4"), "no such file"),
        (lambda d: (d / "notes.mp4").write_text("not a video") and str(d / "notes.mp4"), "not a readable video"),
        (lambda d: (d / "empty.mp4").write_bytes(b"") == 0 and str(d / "empty.mp4"), "file is empty (0 bytes)"),
        (lambda d: "7", "webcam 7: no such camera (cannot open /dev/video7)"),
        # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        (lambda d: "http://127.0.0.1:9/camera.mjpg", "could not open the URL (unreachable, or not a video)"),
    ],
)
@pytest.mark.parametrize("yuv", [True, False], ids=["planes", "bgr"])
def test_sources_that_cannot_be_opened_give_one_line(tmp_path: Path, make, message: str, yuv: bool) -> None:
    with pytest.raises(VideoOpenError) as caught:
        open_source(parse_source(make(tmp_path)), yuv=yuv)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_video_opens_with_its_first_frame(capture_videos: dict[str, Path]) -> None:
    capture, first = open_source(parse_source(str(capture_videos["vga"])))
    try:
        assert isinstance(first, np.ndarray) and first.shape == (480, 640, 3)
        assert source_fps(capture) == 15.0
    finally:
        capture.release()
    reader, planes = open_source(parse_source(str(capture_videos["vga"])), yuv=True)
    try:
        assert isinstance(planes, YuvImage) and (planes.width, planes.height, planes.u.shape) == (640, 480, (240, 320))
        assert source_fps(reader) == 15.0
    finally:
        reader.release()
