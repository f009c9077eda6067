"""The S3 endpoint going away, for real: SeaweedFS stopped (SIGKILL) mid-video and while outputs upload.

Each test has its own server, since it stops it. The pipeline runs in this process (the real model, the
real decoder reading the presigned URL), so that the test knows when a video is half-way through.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import BUNDLED_MODEL
from tests.s3 import WeedServer
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import VideoOutcome, VideoResult

pytestmark = pytest.mark.slow

CONFIG = JobConfig(model=BUNDLED_MODEL, imgsz=160, batch=8)
NOISE_FRAMES = 200


@pytest.fixture(scope="module")
def noisy_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~16 MB that compresses badly: far more than the loopback socket buffers, so a killed endpoint cuts the read."""
    path = tmp_path_factory.mktemp("noise") / "noise.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (640, 480))
    rng = np.random.default_rng(7)
    for _ in range(NOISE_FRAMES):
        writer.write(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture
def own_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WeedServer]:
    server = WeedServer(tmp_path / "s3").start()
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VIDFLEET_S3_MAX_ATTEMPTS", "2")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def runner():  # noqa: ANN201 - ModelRunner, imported lazily like the pipeline does
    from vidfleet_detector.model_runner import ModelRunner

    return ModelRunner(CONFIG)


class StopAt:
    """A ProgressSink that runs `action` once the video has read `frames` frames."""

    def __init__(self, frames: int, action) -> None:  # noqa: ANN001
        self.frames, self.action, self.done = frames, action, False

    def start(self, ref: VideoRef, total_frames: int | None) -> None:
        pass

    def advance(self, frames_read: int) -> None:
        if not self.done and frames_read >= self.frames:
            self.done = True
            self.action()

    def finish(self, result: VideoResult) -> None:
        pass


def upload(server: WeedServer, path: Path) -> str:
    bucket = server.bucket("outage")
    server.client().upload_file(str(path), bucket, "cams/noise.mp4")
    return f"s3://{bucket}/cams/noise.mp4"


def test_endpoint_down_for_good_mid_video_fails_it_with_the_reason(
    own_s3: WeedServer, noisy_video: Path, runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    from vidfleet_detector import decode
    from vidfleet_detector.pipeline import process_video

    # Shorter waits than production (FFmpeg reconnects for 26 s, then 4 reopenings 1+2+4+8 s apart): same path.
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "reconnect;1|reconnect_on_network_error;1|reconnect_delay_max;1")
    monkeypatch.setattr(decode, "RESUME_BACKOFF_S", 0.2)
    source = upload(own_s3, noisy_video)
    result = process_video(VideoRef(source, "noise"), CONFIG, runner, tmp_path, progress=StopAt(24, own_s3.stop))
    assert result.outcome is VideoOutcome.FAILED, result
    assert result.error.startswith(f"{source}: reading stopped at frame ") and "could not be read again" in result.error, result.error
    assert "unreachable" in result.error and "Signature" not in result.error
    assert 24 <= result.frames < NOISE_FRAMES
    assert not list(tmp_path.glob("noise.*")), "no output of a failed video under a final name"


def test_endpoint_back_within_the_retries_resumes_the_video_where_it_stopped(
    own_s3: WeedServer, noisy_video: Path, runner, tmp_path: Path  # noqa: ANN001
) -> None:
    from vidfleet_detector.pipeline import process_video

    source = upload(own_s3, noisy_video)
    unbroken = process_video(VideoRef(source, "unbroken"), CONFIG, runner, tmp_path)
    assert unbroken.ok and unbroken.frames == NOISE_FRAMES, unbroken

    def restart() -> None:
        own_s3.stop()
        own_s3.start()

    resumed = process_video(VideoRef(source, "resumed"), CONFIG, runner, tmp_path, progress=StopAt(24, restart))
    assert resumed.ok, resumed.error
    assert resumed.frames == NOISE_FRAMES and resumed.warning is None
    assert (tmp_path / "resumed.detections.jsonl").read_text() == (tmp_path / "unbroken.detections.jsonl").read_text()


def test_an_upload_outage_is_ridden_out_and_a_lasting_one_fails_the_video_clearly(
    own_s3: WeedServer, runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    from tests.videos import write_video
    from vidfleet_common import objects
    from vidfleet_detector.pipeline import process_video
    from vidfleet_detector.s3_output import process_to

    video = write_video(tmp_path / "small.mp4", 12)
    bucket = own_s3.bucket("up")

    def processed_then(action):  # noqa: ANN001, ANN202
        def run(folder: Path) -> VideoResult:
            result = process_video(VideoRef(str(video), "small"), CONFIG, runner, folder)
            action()
            return result
        return run

    def restart_soon() -> None:
        import threading

        own_s3.stop()
        threading.Timer(1.0, own_s3.start).start()

    monkeypatch.setattr(objects, "UPLOAD_ATTEMPTS", 6)  # 2+4+8+16+32 s: longer than any restart of the server
    ridden = process_to(f"s3://{bucket}/jobs/a/", processed_then(restart_soon))
    assert ridden.ok, ridden.error
    assert own_s3.keys(bucket) == ["jobs/a/small.detections.jsonl", "jobs/a/small.tracks.txt"]

    monkeypatch.setattr(objects, "UPLOAD_BACKOFF_S", 0.1)
    monkeypatch.setattr(objects, "UPLOAD_ATTEMPTS", 3)
    lost = process_to(f"s3://{bucket}/jobs/b/", processed_then(own_s3.stop))
    assert lost.outcome is VideoOutcome.FAILED and lost.error_kind == "output"
    assert lost.error.startswith(f"{video}: processed, but cannot save s3://{bucket}/jobs/b/small.") and "unreachable" in lost.error, lost.error
    assert f"after {objects.UPLOAD_ATTEMPTS} attempts" in lost.error
