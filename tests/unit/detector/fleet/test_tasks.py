"""The detect task's body against a real redis-server, a real video and the shipped model (no worker process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import BUNDLED_MODEL
from tests.servers import RedisServer
from vidfleet_common.contracts import Queue, RedisKeys
from vidfleet_common.fleet import redis_client
from vidfleet_common.jobs import JobRecord, JobStore, JobVideo
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import VideoOutcome
from vidfleet_common.settings import Settings
from vidfleet_detector.fleet.metrics import MetricsObserver, WorkerMetrics
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

    returned = run_detect(request(record), store=store, models=models, hostname="w@unit", metrics=metrics)

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
    run_detect(request(record, 0), store=store, models=models, hostname="w")
    run_detect(request(record, 1, {**CONFIG, "conf": 0.6}), store=store, models=models, hostname="w")  # other thresholds, same model
    assert models.loads == 1
    assert {r.outcome for r in store.results("j2").values()} == {VideoOutcome.SUCCEEDED}
    assert models.runner(JobConfig(model=BUNDLED_MODEL, conf=0.6))._predict_args["conf"] == 0.6


def test_a_cancelled_job_records_cancelled_without_decoding(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j3", {"short_a": video_dir / "short_a.mp4"}, tmp_path)
    store.cancel("j3")
    run_detect(request(record), store=store, models=models, hostname="w")
    result = store.results("j3")["short_a"]
    assert result.outcome is VideoOutcome.CANCELLED and result.frames == 0
    assert not list(tmp_path.iterdir())


def test_bad_requests_and_configs_fail_the_video_with_one_line(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j4", {"a": video_dir / "short_a.mp4", "b": video_dir / "short_b.mp4"}, tmp_path)
    run_detect({**request(record, 0), "out_dir": 7}, store=store, models=models, hostname="w")
    run_detect(request(record, 1, {**CONFIG, "batch": "many"}), store=store, models=models, hostname="w")
    results = store.results("j4")
    assert results["a"].error == "invalid detect request: task field 'out_dir': expected a string, got 7 (int)"
    assert results["b"].error_kind == "config" and "config key 'batch'" in results["b"].error
    nothing = run_detect({"unexpected": True}, store=store, models=models, hostname="w")
    assert nothing["outcome"] == "failed" and nothing["error"].startswith("invalid detect request")


def test_a_model_that_cannot_load_fails_the_video(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j5", {"a": video_dir / "short_a.mp4"}, tmp_path)
    run_detect(request(record, 0, {"model": str(tmp_path / "nope.pt")}), store=store, models=models, hostname="w")
    result = store.results("j5")["a"]
    assert result.outcome is VideoOutcome.FAILED and result.error_kind == "model" and "nope.pt" in result.error


def test_a_failed_redelivery_never_overwrites_a_success(store: JobStore, models: ModelCache, video_dir: Path, tmp_path: Path) -> None:
    record = job(store, "j6", {"a": video_dir / "short_a.mp4"}, tmp_path)
    run_detect(request(record), store=store, models=models, hostname="w1")
    store.cancel("j6")  # the copy that runs again now ends cancelled, which must not replace the success
    run_detect(request(record), store=store, models=models, hostname="w2")
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
