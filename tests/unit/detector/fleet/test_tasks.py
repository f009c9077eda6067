"""The detect task's body against a real redis-server, a real video and the shipped model (no worker process)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import BUNDLED_MODEL
from tests.servers import RedisServer
from vidfleet_common.contracts import Queue, RedisKeys
from vidfleet_common.epoch import FleetEpoch
from vidfleet_common.fleet import redis_client
from vidfleet_common.jobs import Holder, JobRecord, JobStore, JobVideo
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import VideoOutcome, VideoResult
from vidfleet_common.settings import Settings
from vidfleet_detector.fleet.metrics import MetricsObserver, WorkerMetrics
from vidfleet_detector.fleet import tasks
from vidfleet_detector.fleet.tasks import ModelCache, run_detect
from vidfleet_detector.model_runner import Detections

CONFIG = {"model": BUNDLED_MODEL, "batch": 4}


@pytest.fixture(scope="module")
def store(redis_server: RedisServer) -> JobStore:
    return JobStore(redis_client(Settings(CELERY_BROKER_URL=redis_server.url)), RedisKeys("unit-tasks:"))


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


def job(store: JobStore, job_id: str, videos: dict[str, Path], out: Path) -> JobRecord:
    record = JobRecord(job_id=job_id, out_dir=str(out), config=CONFIG, videos=[JobVideo(source=str(p), name=n) for n, p in videos.items()])
    store.create(record)
    return record


def request(record: JobRecord, index: int = 0, config: dict | None = None) -> dict:
    return {"job_id": record.job_id, "video": record.videos[index].model_dump(), "config": config or record.config, "out_dir": record.out_dir}


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_video_is_processed_recorded_and_counted(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j1", {"short_a": video_dir / "short_a.mp4"}, tmp_path)
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)

    returned = run_detect(request(record), store=store, models=models, holder=Holder("w@unit", "inc-w@unit"), metrics=metrics)

    result = store.results("j1")["short_a"]
    assert result.outcome is VideoOutcome.SUCCEEDED and result.worker == "w@unit" and returned["name"] == "short_a"
    assert result.frames == 30 and (tmp_path / "short_a.tracks.txt").exists()
    assert store.running("j1") == {} and store.progress("j1")["short_a"] == 30
    assert store.redis.zcard(store.keys.in_flight(Queue.DETECT)) == 0
    assert metric(registry, "vidfleet_frames_processed_total") == 30
    assert metric(registry, "vidfleet_frames_decoded_total") == 30
    assert metric(registry, "vidfleet_batch_size_sum") == 30 and metric(registry, "vidfleet_batch_size_count") == 8  # 7x4 + 2
    assert metric(registry, "vidfleet_videos_total", outcome="succeeded") == 1
    assert metric(registry, "vidfleet_video_seconds_total") == pytest.approx(30 / result.video_fps)
    detected = sum(metric(registry, "vidfleet_detections_total", class_name=c) for c in ("circle", "square", "triangle"))
    assert detected == result.detections > 0
    assert metric(registry, "vidfleet_tasks_running") == 0 and metric(registry, "vidfleet_active_tracks") == 0


def test_the_model_is_loaded_once_per_process(store: JobStore, video_dir: Path, tmp_path: Path) -> None:
    models = ModelCache()
    record = job(store, "j2", {"a": video_dir / "short_a.mp4", "b": video_dir / "short_b.mp4"}, tmp_path)
    run_detect(request(record, 0), store=store, models=models, holder=Holder("w", "inc-w"))
    run_detect(request(record, 1, {**CONFIG, "conf": 0.6}), store=store, models=models, holder=Holder("w", "inc-w"))  # other thresholds, same model
    assert models.loads == 1
    assert {r.outcome for r in store.results("j2").values()} == {VideoOutcome.SUCCEEDED}
    assert models.runner(JobConfig(model=BUNDLED_MODEL, conf=0.6))._predict_args["conf"] == 0.6


def test_a_cancelled_job_records_cancelled_without_decoding(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j3", {"short_a": video_dir / "short_a.mp4"}, tmp_path)
    store.cancel("j3")
    run_detect(request(record), store=store, models=models, holder=Holder("w", "inc-w"))
    result = store.results("j3")["short_a"]
    assert result.outcome is VideoOutcome.CANCELLED and result.frames == 0
    assert not list(tmp_path.iterdir())


def test_bad_requests_and_configs_fail_the_video_with_one_line(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j4", {"a": video_dir / "short_a.mp4", "b": video_dir / "short_b.mp4"}, tmp_path)
    run_detect({**request(record, 0), "out_dir": 7}, store=store, models=models, holder=Holder("w", "inc-w"))
    run_detect(request(record, 1, {**CONFIG, "batch": "many"}), store=store, models=models, holder=Holder("w", "inc-w"))
    results = store.results("j4")
    assert results["a"].error == "invalid detect request: task field 'out_dir': expected a string, got 7 (int)"
    assert results["b"].error_kind == "config" and "config key 'batch'" in results["b"].error
    nothing = run_detect({"unexpected": True}, store=store, models=models, holder=Holder("w", "inc-w"))
    assert nothing["outcome"] == "failed" and nothing["error"].startswith("invalid detect request")


def test_a_model_that_cannot_load_fails_the_video(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j5", {"a": video_dir / "short_a.mp4"}, tmp_path)
    run_detect(request(record, 0, {"model": str(tmp_path / "nope.pt")}), store=store, models=models, holder=Holder("w", "inc-w"))
    result = store.results("j5")["a"]
    assert result.outcome is VideoOutcome.FAILED and result.error_kind == "model" and "nope.pt" in result.error


def test_a_failed_redelivery_never_overwrites_a_success(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j6", {"a": video_dir / "short_a.mp4"}, tmp_path)
    run_detect(request(record), store=store, models=models, holder=Holder("w1", "inc-w1"))
    store.cancel("j6")  # the copy that runs again now ends cancelled, which must not replace the success
    run_detect(request(record), store=store, models=models, holder=Holder("w2", "inc-w2"))
    assert store.results("j6")["a"].outcome is VideoOutcome.SUCCEEDED and store.results("j6")["a"].worker == "w1"


def test_observer_tracks_active_tracks_as_a_delta() -> None:
    registry = CollectorRegistry()
    observer = MetricsObserver(WorkerMetrics(registry), {0: "circle"})
    observer.on_batch(2, 0.05, [Detections(np.zeros((1, 4)), np.ones(1), np.zeros(1, np.int32))] * 2)
    observer.on_tracks(5)
    observer.on_tracks(3)
    assert metric(registry, "vidfleet_active_tracks") == 3
    assert metric(registry, "vidfleet_detections_total", class_name="circle") == 2
    observer.close()
    assert metric(registry, "vidfleet_active_tracks") == 0


def test_a_message_from_before_redis_lost_its_data_is_dropped_unrun(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j7", {"a": video_dir / "short_a.mp4"}, tmp_path)
    current = FleetEpoch(store.redis, store.keys).ensure().id

    dropped = run_detect({**request(record), "epoch": "an-older-epoch"}, store=store, models=models, holder=Holder("w", "inc-w"))

    assert dropped["outcome"] == "cancelled" and "dispatched before Redis lost its data" in dropped["error"] and current in dropped["error"]
    assert store.results("j7") == {} and store.attempts("j7") == {} and not list(tmp_path.iterdir())


def test_a_result_is_not_written_into_a_redis_that_lost_the_job(store: JobStore) -> None:
    epoch = FleetEpoch(store.redis, store.keys).ensure().id
    result = VideoResult(video="a.mp4", name="a", outcome=VideoOutcome.SUCCEEDED)
    assert store.video_finished("j8", result, epoch="not-" + epoch) is False
    assert store.results("j8") == {}
    assert store.video_finished("j8", result, epoch=epoch) is True and store.results("j8")["a"].ok


def test_a_video_already_done_is_not_run_again(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j9", {"a": video_dir / "short_a.mp4"}, tmp_path)
    first = run_detect(request(record), store=store, models=models, holder=Holder("w1", "inc-1"))
    again = run_detect(request(record), store=store, models=models, holder=Holder("w2", "inc-2"))
    assert again == first and store.attempts("j9") == {"a": 1}


def test_a_copy_delivered_while_a_live_worker_runs_the_video_waits_for_that_run(
    store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "DUPLICATE_POLL_S", 0.05)
    record = job(store, "j10", {"a": video_dir / "short_a.mp4"}, tmp_path)
    store.video_started("j10", "a", Holder("w1", "inc-running"))
    answer: dict = {}
    copy = threading.Thread(
        target=lambda: answer.update(run_detect(request(record), store=store, models=models, holder=Holder("w2", "inc-copy"), is_alive=lambda i: i == "inc-running"))
    )
    copy.start()
    time.sleep(0.3)
    assert copy.is_alive() and store.attempts("j10") == {"a": 1}, "the copy waits, it does not start the video"
    store.video_finished("j10", VideoResult(video="a.mp4", name="a", outcome=VideoOutcome.SUCCEEDED, worker="w1", frames=30))
    copy.join(timeout=10)
    assert answer["worker"] == "w1" and store.attempts("j10") == {"a": 1}


def test_a_copy_runs_the_video_when_its_holder_is_dead_and_counts_the_attempt(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j11", {"a": video_dir / "short_a.mp4"}, tmp_path)
    store.video_started("j11", "a", Holder("w1", "inc-killed"))
    result = run_detect(request(record), store=store, models=models, holder=Holder("w1", "inc-restarted"), is_alive=lambda i: False)
    assert result["outcome"] == "succeeded" and result["attempts"] == 2 and store.results("j11")["a"].attempts == 2
