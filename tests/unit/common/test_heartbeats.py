"""Worker incarnations and their heartbeats, stamped by a real redis-server's clock."""

from __future__ import annotations

import os

import pytest

from tests.servers import RedisServer, wait_for
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.fleet import redis_client
from vidfleet_common.heartbeats import HeartbeatThread, WorkerHeartbeats, heartbeat_interval, new_incarnation
from vidfleet_common.settings import Settings


@pytest.fixture
def heartbeats(redis_server: RedisServer) -> WorkerHeartbeats:
    client = redis_client(Settings(CELERY_BROKER_URL=redis_server.url))
    return WorkerHeartbeats(client, RedisKeys(f"hb{os.urandom(3).hex()}:"))


def server_ms(heartbeats: WorkerHeartbeats) -> float:
    seconds, micros = heartbeats.redis.time()
    return seconds * 1000 + micros / 1000


def test_a_beat_is_aged_by_the_redis_clock(heartbeats: WorkerHeartbeats) -> None:
    alive, dead = new_incarnation(), new_incarnation()
    heartbeats.beat(alive, '{"worker": "w1@pod"}')
    heartbeats.redis.zadd(heartbeats.keys.workers_seen(), {dead: server_ms(heartbeats) - 45_000})  # last beat 45 s ago

    ages = heartbeats.ages([alive, dead, "never-seen"])

    assert ages[alive] is not None and ages[alive] < 1.0
    assert ages[dead] == pytest.approx(45.0, abs=1.0)
    assert ages["never-seen"] is None
    assert heartbeats.is_alive(alive, within=5) and not heartbeats.is_alive(dead, within=5)
    assert heartbeats.redis.hget(heartbeats.keys.workers(), alive) == b'{"worker": "w1@pod"}'


def test_leave_and_prune_forget_incarnations(heartbeats: WorkerHeartbeats) -> None:
    gone, old, fresh = new_incarnation(), new_incarnation(), new_incarnation()
    for incarnation in (gone, old, fresh):
        heartbeats.beat(incarnation)
    heartbeats.redis.zadd(heartbeats.keys.workers_seen(), {old: server_ms(heartbeats) - 7200_000})

    heartbeats.leave(gone)
    assert heartbeats.prune(older_than=3600) == 1

    assert heartbeats.ages([gone, old, fresh]) == {gone: None, old: None, fresh: pytest.approx(0.0, abs=1.0)}
    assert not heartbeats.redis.hexists(heartbeats.keys.workers(), old)


def test_the_heartbeat_thread_beats_until_stopped_then_leaves(heartbeats: WorkerHeartbeats) -> None:
    incarnation = new_incarnation()
    thread = HeartbeatThread(heartbeats, incarnation, interval=0.2, worker="w@test").start()
    assert heartbeats.ages([incarnation])[incarnation] is not None, "the first beat is made before start() returns"
    first = heartbeats.redis.zscore(heartbeats.keys.workers_seen(), incarnation)
    wait_for(lambda: heartbeats.redis.zscore(heartbeats.keys.workers_seen(), incarnation) > first, timeout=5, what="a second beat")
    thread.stop()
    assert heartbeats.ages([incarnation])[incarnation] is None


@pytest.mark.parametrize(("lost", "interval"), [(30, 2.0), (6, 1.5), (1, 0.5)])
def test_several_beats_fit_in_the_worker_lost_time(lost: float, interval: float) -> None:
    assert heartbeat_interval(lost) == interval
