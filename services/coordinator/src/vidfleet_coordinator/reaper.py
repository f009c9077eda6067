"""Give a dead worker's video back to the queue now, not after the visibility timeout.

A `detect` message is acknowledged late, so a worker that dies mid-video (a pod SIGKILLed, a node
lost) leaves it in Celery's `unacked` hash, and Redis redelivers it only once the visibility
timeout has passed: hours, since it must exceed the longest video. The coordinator knows which
worker runs which video (the job's `running` hash) and which workers answer ping; a video whose
worker has missed pings for `grace` seconds is restored to the front of its queue, the way kombu
restores it after the timeout. Redelivery is harmless (outputs are renamed into place, results are
keyed by video), so a false alarm costs a repeated video, never a lost or doubled one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from vidfleet_common.contracts import Queue
from vidfleet_common.fleet import detect_task_id
from vidfleet_common.jobs import JobStore
from vidfleet_common.settings import scrub_url
from vidfleet_coordinator.fleet import WorkerCensus

log = logging.getLogger("vidfleet.coordinator.reaper")

UNACKED_KEY = "unacked"  # kombu's Redis transport default (vidfleet sets no global key prefix)
GRACE_SECONDS = 30.0
INTERVAL_SECONDS = 10.0


class Reaper:
    def __init__(self, store: JobStore, census: WorkerCensus, celery_app: Any, *, grace: float = GRACE_SECONDS) -> None:
        self.store = store
        self.census = census
        self.celery_app = celery_app
        self.grace = grace
        self._missing_since: dict[str, float] = {}

    def run_once(self, now: float | None = None) -> list[str]:
        """Restore the videos of workers silent for `grace` seconds; returns their task ids."""
        now = time.monotonic() if now is None else now
        live = set(self.census.workers_by_queue(fresh=True).get(Queue.DETECT.value, []))
        orphans: list[tuple[str, str]] = []
        seen: set[str] = set()
        for job_id in self.store.active_ids():
            for video, worker in self.store.running(job_id).items():
                if worker in live:
                    continue
                seen.add(worker)
                first = self._missing_since.setdefault(worker, now)
                if now - first >= self.grace:
                    orphans.append((job_id, video))
        for worker in set(self._missing_since) - seen:
            del self._missing_since[worker]  # came back, or nothing of it is running any more
        return [task_id for job_id, video in orphans if (task_id := self._restore(job_id, video))]

    def run_forever(self, stop: threading.Event, interval: float = INTERVAL_SECONDS) -> None:
        while not stop.wait(interval):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - Redis restarting or no reply: next pass
                log.warning("reaper pass failed: %s", scrub_url(str(exc)))

    def _restore(self, job_id: str, video: str) -> str | None:
        task_id = detect_task_id(job_id, video)
        tags = list(_unacked_tags(self.store.redis, task_id))
        with self.celery_app.connection_for_write() as connection:
            qos = connection.default_channel.qos
            for tag in tags:
                qos.restore_by_tag(tag)
        self.store.redis.hdel(self.store.keys.job_running(job_id), video)
        if tags:
            log.warning("job %s video %s: its worker stopped answering; task %s is back in the queue", job_id, video, task_id)
            return task_id
        return None  # already redelivered: only the stale "running" mark is cleared


def _unacked_tags(redis: Any, task_id: str) -> Iterable[str]:
    for tag, raw in redis.hscan_iter(UNACKED_KEY):
        try:
            message = json.loads(raw)[0]
        except (ValueError, IndexError, TypeError):
            continue
        if isinstance(message, dict) and message.get("headers", {}).get("id") == task_id:
            yield tag.decode() if isinstance(tag, bytes) else tag
