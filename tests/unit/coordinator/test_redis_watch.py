"""The coordinator's watch on Redis: persistence read at start, and a data loss turned into failed jobs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.servers import RedisServer
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.fleet import redis_client
from vidfleet_common.jobs import JobRecord, JobState, JobStore, JobVideo
from vidfleet_common.results import VideoOutcome, VideoResult
from vidfleet_common.settings import Settings
from vidfleet_coordinator.finalizer import Finalizer, KnownJobs
from vidfleet_coordinator.metrics import CoordinatorMetrics
from vidfleet_coordinator.redis_watch import LOST_VIDEO_KIND, RedisWatch, read_persistence


@pytest.fixture
def store(redis_server: RedisServer) -> JobStore:
    return JobStore(redis_client(Settings(CELERY_BROKER_URL=redis_server.url)), RedisKeys(f"rw{os.urandom(3).hex()}:"))


def forget_everything(store: JobStore) -> None:
    """What a restart without persistence does to this fleet's keys (the shared test Redis keeps other prefixes)."""
    keys = list(store.redis.scan_iter(match=f"{store.keys.prefix}*"))
    store.redis.delete(*keys)


def test_persistence_is_read_from_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    with_aof = RedisServer(tmp_path / "aof", appendonly=True).start()
    try:
        assert read_persistence(redis_client(Settings(CELERY_BROKER_URL=with_aof.url))) == (1, "aof")
    finally:
        with_aof.kill()
    assert read_persistence(redis_client(Settings(CELERY_BROKER_URL=redis_server.url))) == (0, "none")  # --appendonly no --save ""


def test_a_redis_that_lost_its_data_fails_the_running_jobs_with_the_reason(store: JobStore, tmp_path: Path) -> None:
    metrics = CoordinatorMetrics(store, None)
    known = KnownJobs()
    watch = RedisWatch(store, known, metrics)
    watch.start()
    record = JobRecord(
        job_id="lost1", out_dir=str(tmp_path), config={}, epoch=watch.epoch,
        videos=[JobVideo(source="/v/a.mp4", name="a"), JobVideo(source="/v/b.mp4", name="b")],
    )
    store.create(record)
    store.video_finished(record.job_id, VideoResult(video="/v/a.mp4", name="a", outcome=VideoOutcome.SUCCEEDED, frames=40))
    Finalizer(store, metrics, known).run_once()  # the coordinator's last look before the loss
    assert watch.check() is False

    forget_everything(store)

    assert watch.check() is True
    after = store.get("lost1")
    assert after is not None and after.state is JobState.FAILED and "Redis lost its data at" in after.message
    assert "1 of 2 videos had succeeded" in after.message
    results = store.results("lost1")
    assert results["a"].ok and results["b"].error_kind == LOST_VIDEO_KIND
    assert store.active_ids() == [] and store.count_by_state()["failed"] == 1
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["state"] == "failed" and result["success"] is False and "lost its data" in result["message"]
    assert watch.data_lost_at() is not None and watch.epoch != record.epoch
    exposition = metrics.exposition().decode()
    assert "vidfleet_redis_data_loss_total 1.0" in exposition and "vidfleet_redis_persistent 0.0" in exposition
    assert 'vidfleet_jobs_finished_total{state="failed"} 1.0' in exposition
    assert watch.check() is False, "one loss, reported once"
