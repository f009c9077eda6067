"""The reaper against a real redis-server holding a real kombu `unacked` entry (no worker processes)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import RedisServer
from vidfleet_common.contracts import Queue, RedisKeys
from vidfleet_common.fleet import detect_task_id, redis_client
from vidfleet_common.heartbeats import WorkerHeartbeats
from vidfleet_common.jobs import Holder, JobRecord, JobStore, JobVideo
from vidfleet_common.settings import Settings
from vidfleet_coordinator.api import make_celery
from vidfleet_coordinator.reaper import UNACKED_KEY, Reaper

GRACE = 6.0


@pytest.fixture
def fleet_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", appendonly=False).start()  # its own: kombu's keys carry no prefix
    yield server
    server.kill()


@pytest.fixture
def store(fleet_redis: RedisServer) -> JobStore:
    return JobStore(redis_client(Settings(CELERY_BROKER_URL=fleet_redis.url)), RedisKeys())


def a_running_job(store: JobStore, out: Path, holders: dict[str, Holder]) -> JobRecord:
    record = JobRecord(job_id="job1", out_dir=str(out), config={}, videos=[JobVideo(source=f"/v/{n}.mp4", name=n) for n in holders])
    store.create(record)
    for tag, (name, holder) in enumerate(holders.items()):
        store.video_started(record.job_id, name, holder)
        message = {"body": "e30=", "headers": {"id": detect_task_id(record.job_id, name), "task": "vidfleet.detect.video"}, "properties": {"delivery_tag": str(tag)}}
        store.redis.hset(UNACKED_KEY, str(tag), json.dumps([message, "", Queue.DETECT.value]))
        store.redis.zadd("unacked_index", {str(tag): time.time()})
        (out / f".tmp-{holder.incarnation}-1a2b-{name}.tracks.txt").write_text("1,1,0,0,1,1,0.9,-1,-1,-1\n")
    return record


def beat(store: JobStore, incarnation: str, seconds_ago: float) -> None:
    server_s, micros = store.redis.time()
    store.redis.zadd(store.keys.workers_seen(), {incarnation: (server_s + micros / 1e6 - seconds_ago) * 1000})


def test_a_video_whose_process_stopped_beating_goes_back_even_if_its_hostname_lives_on(store: JobStore, fleet_redis: RedisServer, tmp_path: Path) -> None:
    # The same Celery hostname twice: the container was restarted in its pod; only the incarnation tells them apart.
    dead, alive = Holder("w1@pod-a", "deadbeef0001"), Holder("w1@pod-a", "a11ve0000002")
    record = a_running_job(store, tmp_path, {"killed": dead, "running": alive})
    beat(store, dead.incarnation, seconds_ago=GRACE + 5)
    beat(store, alive.incarnation, seconds_ago=0)
    reaper = Reaper(store, make_celery(Settings(CELERY_BROKER_URL=fleet_redis.url)), grace=GRACE)

    assert reaper.run_once(now=0.0) == [], "nothing is decided right after connecting"
    given = reaper.run_once(now=reaper.settle_seconds)

    assert [(g.video, g.restored, g.temp_files_removed) for g in given] == [("killed", True, 1)]
    queued = [json.loads(m)["headers"]["id"] for m in store.redis.lrange(Queue.DETECT.value, 0, -1)]
    assert queued == [detect_task_id(record.job_id, "killed")], "back at the front of its queue"
    assert set(store.holders(record.job_id)) == {"running"}
    assert [p.name for p in tmp_path.glob(".tmp-*")] == [f".tmp-{alive.incarnation}-1a2b-running.tracks.txt"]
    assert reaper.run_once(now=reaper.settle_seconds + 1) == [], "given back once"


def test_a_process_that_never_beat_is_given_grace_before_its_video_goes_back(store: JobStore, fleet_redis: RedisServer, tmp_path: Path) -> None:
    a_running_job(store, tmp_path, {"v": Holder("w2@pod-b", "n0beat000003")})
    reaper = Reaper(store, make_celery(Settings(CELERY_BROKER_URL=fleet_redis.url)), grace=GRACE)
    start = reaper.settle_seconds
    reaper.run_once(now=0.0)
    assert reaper.run_once(now=start) == []
    assert reaper.run_once(now=start + GRACE - 1) == []
    assert [g.video for g in reaper.run_once(now=start + GRACE)] == ["v"]


def test_a_live_worker_keeps_its_video(store: JobStore, fleet_redis: RedisServer, tmp_path: Path) -> None:
    holder = Holder("w3@pod-c", "a11ve0000004")
    a_running_job(store, tmp_path, {"v": holder})
    WorkerHeartbeats(store.redis, store.keys).beat(holder.incarnation)
    reaper = Reaper(store, make_celery(Settings(CELERY_BROKER_URL=fleet_redis.url)), grace=GRACE)
    reaper.run_once(now=0.0)
    assert reaper.run_once(now=100.0) == []
    assert store.redis.hlen(UNACKED_KEY) == 1
