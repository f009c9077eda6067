"""Give a dead worker's video back to the queue now, not after the visibility timeout.

A `detect` message is acknowledged late, so a worker that dies mid-video (a pod SIGKILLed, a node
lost, a container OOM-killed and restarted) leaves it in Celery's `unacked` hash, and Redis
redelivers it only once the visibility timeout has passed: hours, since it must exceed the longest
video. Each video's running mark names the worker *process incarnation* that runs it, and every
incarnation beats in Redis (vidfleet_common.heartbeats). A video whose incarnation has not beaten
for `grace` seconds is restored to the front of its queue, the way kombu restores it after the
timeout, and that incarnation's temporary files are removed.

The decision never rests on the hostname answering ping: a container restarted in its pod answers
under the same name while the process that held the video is gone.

Redelivery is harmless (outputs are renamed into place, results are keyed by video), so a false
alarm costs a repeated video, never a lost or doubled one. To keep false alarms away after a Redis
outage, during which nobody could beat, the reaper decides nothing until it has been connected for
two heartbeat intervals.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidfleet_common.buckets import is_s3
from vidfleet_common.fleet import detect_task_id
from vidfleet_common.heartbeats import WorkerHeartbeats, heartbeat_interval
from vidfleet_common.jobs import Holder, JobStore
from vidfleet_common.redis_connection import report_failure
from vidfleet_common.staging import remove_temp_files

log = logging.getLogger("vidfleet.coordinator.reaper")

UNACKED_KEY = "unacked"  # kombu's Redis transport default (vidfleet sets no global key prefix)
GRACE_SECONDS = 30.0
INTERVAL_SECONDS = 10.0
# Incarnations silent this long are forgotten (their heartbeat entries removed).
FORGET_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class GivenBack:
    job_id: str
    video: str
    holder: Holder
    task_id: str
    restored: bool
    temp_files_removed: int


class Reaper:
    def __init__(self, store: JobStore, celery_app: Any, *, grace: float = GRACE_SECONDS, metrics: Any = None) -> None:
        self.store = store
        self.celery_app = celery_app
        self.grace = grace
        self.metrics = metrics
        self.heartbeats = WorkerHeartbeats(store.redis, store.keys)
        self.settle_seconds = 2 * heartbeat_interval(grace)
        self._connected_since: float | None = None
        self._never_seen_since: dict[str, float] = {}

    def run_once(self, now: float | None = None) -> list[GivenBack]:
        """Give back the videos of incarnations silent for `grace` seconds."""
        now = time.monotonic() if now is None else now
        holders: list[tuple[str, str, Holder]] = []
        out_dirs: dict[str, Path] = {}
        for job_id in self.store.active_ids():
            for video, holder in self.store.holders(job_id).items():
                if holder.incarnation:
                    holders.append((job_id, video, holder))
        ages = self.heartbeats.ages(h.incarnation for _, _, h in holders if h.incarnation)
        if self._connected_since is None:
            self._connected_since = now
        if now - self._connected_since < self.settle_seconds:
            return []  # just (re)connected: live workers have not had the time to beat yet
        dead = [(job_id, video, h) for job_id, video, h in holders if self._is_dead(h.incarnation, ages.get(h.incarnation), now)]
        given: list[GivenBack] = []
        for job_id, video, holder in dead:
            if job_id not in out_dirs:
                record = self.store.get(job_id)
                # an s3:// output holds no temporary objects: the killed worker staged them on its own disk
                out_dirs[job_id] = Path(record.out_dir) if record and not is_s3(record.out_dir) else Path()
            given.append(self._give_back(job_id, video, holder, out_dirs[job_id]))
        return given

    def run_forever(self, stop: threading.Event, interval: float = INTERVAL_SECONDS) -> None:
        next_prune = 0.0
        while not stop.wait(interval):
            try:
                self.run_once()
                if time.monotonic() >= next_prune:
                    self.heartbeats.prune(older_than=FORGET_SECONDS)
                    next_prune = time.monotonic() + 3600
            except Exception as exc:  # noqa: BLE001 - Redis restarting or no reply: next pass
                self._connected_since = None
                report_failure(exc, log, "reaper pass failed")

    def _is_dead(self, incarnation: str, age: float | None, now: float) -> bool:
        if age is not None:
            self._never_seen_since.pop(incarnation, None)
            return age > self.grace
        # No heartbeat at all (it died before its first beat, or its entry is gone): dead once that lasts `grace`.
        first = self._never_seen_since.setdefault(incarnation, now)
        return now - first >= self.grace

    def _give_back(self, job_id: str, video: str, holder: Holder, out_dir: Path) -> GivenBack:
        task_id = detect_task_id(job_id, video)
        tags = list(_unacked_tags(self.store.redis, task_id))
        with self.celery_app.connection_for_write() as connection:
            qos = connection.default_channel.qos
            for tag in tags:
                qos.restore_by_tag(tag)
        self.store.release(job_id, video, holder.incarnation or "")
        self._never_seen_since.pop(holder.incarnation or "", None)
        removed = remove_temp_files(out_dir, holder.incarnation) if holder.incarnation and out_dir != Path() else []
        if tags:
            log.warning(
                "job %s video %s: worker %s (incarnation %s) stopped beating; task %s is back in the queue%s",
                job_id, video, holder.worker, holder.incarnation, task_id,
                f", {len(removed)} temporary files of the killed run removed" if removed else "",
            )
            if self.metrics is not None:
                self.metrics.videos_given_back.inc()
        return GivenBack(job_id, video, holder, task_id, bool(tags), len(removed))


def _unacked_tags(redis: Any, task_id: str) -> Iterable[str]:
    for tag, raw in redis.hscan_iter(UNACKED_KEY):
        try:
            message = json.loads(raw)[0]
        except (ValueError, IndexError, TypeError):
            continue
        if isinstance(message, dict) and message.get("headers", {}).get("id") == task_id:
            yield tag.decode() if isinstance(tag, bytes) else tag
