"""Which worker processes are alive, told by what each process itself holds, not by its hostname.

Every worker process start is a new *incarnation* (a random id). The incarnation is what a worker
writes beside each video it runs, and what it refreshes in Redis every few seconds. A worker that
is SIGKILLed and restarted under the same Celery hostname (a container restarted in its pod) comes
back as a new incarnation: the old one's heartbeat stops, so the reaper gives its video back, even
though the hostname answers ping again.

Heartbeats are stamped with the Redis server's clock (TIME, inside a script), so the ages the reaper
computes never depend on the clocks of the machines involved.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from vidfleet_common.contracts import RedisKeys

log = logging.getLogger("vidfleet.heartbeats")

# KEYS: seen zset, workers hash. ARGV: incarnation, its JSON details. Stamps it with the server's clock.
_BEAT = """
local t = redis.call('time')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('zadd', KEYS[1], ms, ARGV[1])
redis.call('hset', KEYS[2], ARGV[1], ARGV[2])
return ms
"""
# KEYS: seen zset. ARGV: incarnations. Returns the server's time (ms), then each one's last beat ('' if none).
_AGES = """
local t = redis.call('time')
local out = {tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}
for i = 1, #ARGV do
  out[i + 1] = redis.call('zscore', KEYS[1], ARGV[i]) or ''
end
return out
"""


def new_incarnation() -> str:
    return secrets.token_hex(6)


def heartbeat_interval(worker_lost_seconds: float) -> float:
    """How often a worker beats: several beats fit in the time after which it is declared lost."""
    return max(0.5, min(2.0, worker_lost_seconds / 4))


class WorkerHeartbeats:
    """Announce, beat and read worker incarnations (sync redis-py client)."""

    def __init__(self, redis: Any, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._beat = redis.register_script(_BEAT)
        self._ages = redis.register_script(_AGES)

    def beat(self, incarnation: str, details: str = "{}") -> None:
        """Stamp `incarnation` alive now, with its JSON `details` (re-written every beat: they survive a Redis flush)."""
        self._beat(keys=[self.keys.workers_seen(), self.keys.workers()], args=[incarnation, details])

    def leave(self, incarnation: str) -> None:
        pipe = self.redis.pipeline()
        pipe.hdel(self.keys.workers(), incarnation)
        pipe.zrem(self.keys.workers_seen(), incarnation)
        pipe.execute()

    def ages(self, incarnations: Iterable[str]) -> dict[str, float | None]:
        """Seconds since each incarnation's last heartbeat, by the Redis clock; None if it never beat (or left)."""
        wanted = sorted(set(incarnations))
        if not wanted:
            return {}
        answer = self._ages(keys=[self.keys.workers_seen()], args=wanted)
        now = float(answer[0])
        ages: dict[str, float | None] = {}
        for incarnation, seen in zip(wanted, answer[1:]):
            ages[incarnation] = None if seen in (b"", "", None) else max(0.0, (now - float(seen)) / 1000)
        return ages

    def is_alive(self, incarnation: str, within: float) -> bool:
        age = self.ages([incarnation]).get(incarnation)
        return age is not None and age <= within

    def prune(self, older_than: float) -> int:
        """Forget incarnations silent for `older_than` seconds (dead long ago); returns how many."""
        now_ms = self._ages(keys=[self.keys.workers_seen()], args=[])[0]
        stale = self.redis.zrangebyscore(self.keys.workers_seen(), "-inf", float(now_ms) - older_than * 1000)
        if stale:
            pipe = self.redis.pipeline()
            pipe.zrem(self.keys.workers_seen(), *stale)
            pipe.hdel(self.keys.workers(), *stale)
            pipe.execute()
        return len(stale)


class HeartbeatThread:
    """Beats for one incarnation every `interval` seconds until stopped; Redis errors are ridden out."""

    def __init__(self, heartbeats: WorkerHeartbeats, incarnation: str, interval: float, **info: Any) -> None:
        self.heartbeats = heartbeats
        self.incarnation = incarnation
        self.interval = interval
        self.details = json.dumps({"hostname": socket.gethostname(), "pid": os.getpid(), "started_at": round(time.time(), 3), **info})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidfleet-heartbeat", daemon=True)

    def start(self) -> HeartbeatThread:
        """Beat once now (before the worker takes its first task), then every `interval` seconds."""
        self._beat_once()
        self._thread.start()
        return self

    def stop(self, *, leave: bool = True) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
        if leave:
            try:
                self.heartbeats.leave(self.incarnation)
            except Exception as exc:  # noqa: BLE001 - Redis away at shutdown: the entry ages out
                log.debug("heartbeat: could not leave: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat_once()

    def _beat_once(self) -> None:
        try:
            self.heartbeats.beat(self.incarnation, self.details)
        except Exception as exc:  # noqa: BLE001 - Redis restarting: the connection report says so once
            log.debug("heartbeat failed: %s", exc)
