from pathlib import Path

import numpy as np
import pytest

from vidfleet_common.errors import EmptyVideoError, VideoOpenError
from vidfleet_detector.decode import FrameReader

from tests.videos import bad_inputs, write_video


@pytest.mark.parametrize("stride", [1, 2, 3, 7])
def test_every_strideth_frame_is_decoded_in_order(tmp_path: Path, stride: int) -> None:
    video = write_video(tmp_path / "v.mp4", 20)
    with FrameReader(str(video), stride=stride, buffer=2) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(0, 20, stride))
    # Each frame's grey level identifies it (MPEG-4 is lossy: compare approximately).
    assert all(abs(float(np.mean(f.image)) - (f.index * 8) % 256) < 4 for f in frames)
    assert reader.frames_read == 20
    assert reader.info.width == 64 and reader.info.height == 48 and reader.info.total_frames == 20


def test_close_stops_a_reader_that_is_ahead(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", 50)
    reader = FrameReader(str(video), buffer=1)
    first = next(iter(reader))
    reader.close()
    assert first.index == 0
    assert not reader._thread.is_alive()


@pytest.mark.parametrize("name", ["notes.mp4", "empty.mp4", "truncated.mp4", "missing.mp4"])
def test_unopenable_files_fail_before_any_frame(tmp_path: Path, name: str) -> None:
    expected = {Path(k).name: v for k, v in bad_inputs(tmp_path).items()}
    with pytest.raises(VideoOpenError) as caught:
        FrameReader(str(tmp_path / name))
    assert name in str(caught.value)
    assert expected[name].split(" (")[0].replace("no such file or folder", "no such file") in str(caught.value)


def test_zero_frame_video_says_so(tmp_path: Path) -> None:
    bad_inputs(tmp_path)
    reader = FrameReader(str(tmp_path / "zero_frames.avi"))
    with pytest.raises(EmptyVideoError, match="video has no frames"):
        list(reader)


def test_bad_stride_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stride"):
        FrameReader(str(write_video(tmp_path / "v.mp4", 2)), stride=0)


def test_a_url_whose_server_refuses_fails_at_once_and_a_listening_one_goes_to_ffmpeg() -> None:
    import socket

    from vidfleet_detector.decode import _unreachable

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: the connection is refused
        assert _unreachable(f"http://127.0.0.1:{port}/cam.mp4") == "connection refused"
        with pytest.raises(VideoOpenError, match=rf"^http://127.0.0.1:{port}/cam.mp4: could not open the URL \(connection refused\)$"):
            FrameReader(f"http://127.0.0.1:{port}/cam.mp4")
    with socket.create_server(("127.0.0.1", 0)) as listening:
        assert _unreachable(f"http://127.0.0.1:{listening.getsockname()[1]}/cam.mp4") is None
    assert _unreachable("rtsp://127.0.0.1:9/cam") is None, "only http(s) is checked; FFmpeg opens the rest"
