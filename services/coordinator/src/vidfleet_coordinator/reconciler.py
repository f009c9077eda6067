"""Make the fleet match the registry: start captures for wanted streams that have none, stop the rest.

A capture proves it is alive by its status hash, refreshed every heartbeat and expiring after
HEARTBEAT_TTL_SECONDS. A wanted stream without one gets a capture task (once: a `starting` marker
covers the time the task waits in the queue). A capture that failed to open its source keeps its
error visible and is retried with exponential backoff, never in a tight loop. A removed stream's
frame stream and status keys are deleted once its capture has stopped and its detector let it go.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

from vidfleet_common.contracts import Queue, TaskName
from vidfleet_common.redis_connection import report_failure
from vidfleet_common.settings import scrub_url
from vidfleet_common.streams import StreamSpec
from vidfleet_coordinator.streams import StreamRegistry

log = logging.getLogger("vidfleet.coordinator.reconciler")

STARTING_TTL_SECONDS = 60  # a queued capture task not started by then is sent again
RETRY_BASE_SECONDS = 10.0
RETRY_MAX_SECONDS = 300.0


LEADER_TTL_SECONDS = 10


class Reconciler:
    """One coordinator replica reconciles at a time (a leader lock in Redis)."""

    def __init__(self, registry: StreamRegistry, celery_app: Any, *, identity: str | None = None) -> None:
        self.registry = registry
        self.celery_app = celery_app
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (failures in a row, next attempt)

    def is_leader(self) -> bool:
        redis, key = self.registry.redis, f"{self.registry.keys.prefix}reconciler:leader"
        if redis.set(key, self.identity, nx=True, ex=LEADER_TTL_SECONDS):
            return True
        holder = redis.get(key)
        if holder is not None and holder.decode() == self.identity:
            redis.expire(key, LEADER_TTL_SECONDS)
            return True
        return False

    def run_once(self, now: float | None = None) -> dict[str, list[str]]:
        now = time.monotonic() if now is None else now
        if not self.is_leader():
            return {"started": [], "stopped": []}
        redis, keys = self.registry.redis, self.registry.keys
        started: list[str] = []
        wanted = self.registry.wanted()
        for spec in wanted:
            status = redis.hmget(keys.capture_status(spec.name), "state", "error")
            state = status[0].decode() if status[0] else None
            if state == "failed":
                self._note_failure(spec.name, now, status[1])
                continue
            if state is not None:
                if state == "running":
                    redis.delete(self.registry.starting_key(spec.name))  # started: a later death restarts it at once
                    if self._failures.pop(spec.name, None) is not None:
                        redis.hdel(self.registry.failures_key(), spec.name)
                continue
            if redis.exists(self.registry.starting_key(spec.name)):
                continue
            failures, next_at = self._failures.get(spec.name, (0, 0.0))
            if now < next_at:
                continue
            self._start(spec)
            started.append(spec.name)
        stopped = self._stop_unwanted({s.name for s in wanted})
        self.forget_removed()
        return {"started": started, "stopped": stopped}

    def forget_removed(self) -> list[str]:
        """Delete the frame streams (and status keys) of removed streams that nothing captures or tracks any more."""
        forgotten = [name for name in self.registry.removed() if self.registry.forget(name)]
        for name in forgotten:
            log.info("stream %s: removed; its frame stream is deleted (its tracks are kept)", name)
        return forgotten

    def run_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        while not stop.wait(interval):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - Redis restarting: next pass
                report_failure(exc, log, "reconciler pass failed")

    def _start(self, spec: StreamSpec) -> None:
        redis, keys = self.registry.redis, self.registry.keys
        redis.set(self.registry.starting_key(spec.name), "1", ex=STARTING_TTL_SECONDS)
        self.celery_app.send_task(
            TaskName.CAPTURE_STREAM.value,
            kwargs={"infile": spec.source, "output": keys.frames(spec.name), "stream": spec.model_dump(mode="json")},
            queue=Queue.CAPTURE.value,
        )
        log.info("stream %s: capture task sent (%s)", spec.name, scrub_url(spec.source))

    def _note_failure(self, name: str, now: float, error: bytes | None) -> None:
        failures, next_at = self._failures.get(name, (0, 0.0))
        if next_at > now:
            return  # this failure is already counted
        failures += 1
        delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (failures - 1))
        self._failures[name] = (failures, now + delay)
        message = error.decode() if error else "unknown error"
        self.registry.redis.hset(
            self.registry.failures_key(), name, json.dumps({"error": message, "failures": failures, "retry_in_s": round(delay)})
        )
        log.warning("stream %s: capture failed (%s); attempt %d, next in %.0fs", name, scrub_url(message), failures, delay)

    def _stop_unwanted(self, wanted: set[str]) -> list[str]:
        redis, keys = self.registry.redis, self.registry.keys
        stopped = []
        pattern = keys.capture_status("*")
        for key in redis.scan_iter(match=pattern, count=200):
            name = key.decode()[len(keys.capture_status("")):]
            if ":" in name or name in wanted:
                continue  # ":owner", ":starting", ":stop" keys, or a wanted stream
            state = redis.hget(key, "state")
            if state and state.decode() not in ("stopped", "failed", "ended") and not redis.exists(keys.capture_stop(name)):
                redis.set(keys.capture_stop(name), "1", ex=120)
                stopped.append(name)
                log.info("stream %s: not wanted, capture asked to stop", name)
        return stopped
