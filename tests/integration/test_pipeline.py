"""process_video in-process with the bundled model: flushing, cancelling, partial outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BUNDLED_MODEL
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import VideoOutcome
from vidfleet_detector.model_runner import ModelRunner
from vidfleet_detector.pipeline import process_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runner() -> ModelRunner:
    return ModelRunner(JobConfig(model=BUNDLED_MODEL, device="cpu"))


def _run(runner: ModelRunner, video: Path, out: Path, **config: object):
    cfg = JobConfig(model=BUNDLED_MODEL, device="cpu", **config)
    return process_video(VideoRef(str(video), video.stem), cfg, runner, out)


def test_outputs_do_not_depend_on_how_often_detections_are_flushed(runner: ModelRunner, video_dir: Path, tmp_path: Path) -> None:
    video = video_dir / "short_b.mp4"
    small = _run(runner, video, tmp_path / "small", max_detections_in_memory=1)
    large = _run(runner, video, tmp_path / "large", max_detections_in_memory=100_000)
    assert small.ok and large.ok and small.detections == large.detections > 0
    for suffix in (".detections.jsonl", ".tracks.txt"):
        assert (tmp_path / "small" / f"short_b{suffix}").read_bytes() == (tmp_path / "large" / f"short_b{suffix}").read_bytes()


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_batch_size_does_not_change_the_tracks(runner: ModelRunner, video_dir: Path, tmp_path: Path, batch: int) -> None:
    reference = _run(runner, video_dir / "short_a.mp4", tmp_path / "b1", batch=1)
    batched = _run(runner, video_dir / "short_a.mp4", tmp_path / "bn", batch=batch)
    assert reference.ok and batched.ok
    ref_rows = [r.split(",")[:2] for r in (tmp_path / "b1" / "short_a.tracks.txt").read_text().splitlines()]
    got_rows = [r.split(",")[:2] for r in (tmp_path / "bn" / "short_a.tracks.txt").read_text().splitlines()]
    assert got_rows == ref_rows and batched.frames_processed == reference.frames_processed


@pytest.mark.parametrize("stride", [2, 3])
def test_skip_frames_processes_every_nth_frame_with_original_frame_numbers(runner: ModelRunner, video_dir: Path, tmp_path: Path, stride: int) -> None:
    result = _run(runner, video_dir / "short_a.mp4", tmp_path, skip_frames=stride, min_hits=1)
    assert result.ok and result.frames == 30
    assert result.frames_processed == len(range(0, 30, stride))
    frames = {int(r.split(",")[0]) for r in (tmp_path / "short_a.tracks.txt").read_text().splitlines()}
    assert frames and all((f - 1) % stride == 0 for f in frames)


def test_a_cancelled_video_leaves_no_output(runner: ModelRunner, video_dir: Path, tmp_path: Path) -> None:
    calls = iter(range(100))
    cfg = JobConfig(model=BUNDLED_MODEL, device="cpu", batch=2)
    result = process_video(VideoRef(str(video_dir / "short_a.mp4"), "short_a"), cfg, runner, tmp_path,
                           should_stop=lambda: next(calls) >= 2)
    assert result.outcome is VideoOutcome.CANCELLED and result.error_kind == "cancelled"
    assert list(tmp_path.iterdir()) == []


def test_save_intermediate_results_keeps_partial_outputs(runner: ModelRunner, video_dir: Path, tmp_path: Path) -> None:
    calls = iter(range(100))
    cfg = JobConfig(model=BUNDLED_MODEL, device="cpu", batch=2, save_intermediate_results=True)
    result = process_video(VideoRef(str(video_dir / "short_a.mp4"), "short_a"), cfg, runner, tmp_path,
                           should_stop=lambda: next(calls) >= 5)
    assert result.outcome is VideoOutcome.CANCELLED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short_a.partial.detections.jsonl", "short_a.partial.tracks.txt"]
    assert (tmp_path / "short_a.partial.detections.jsonl").read_text().strip()
