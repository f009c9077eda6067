"""The coordinator's watch on Redis itself: does it keep its data, and has it just lost it?

At start the coordinator reads Redis's persistence settings (`CONFIG GET appendonly` and `save`)
and warns once when there is neither, since a restart of such a Redis loses every job in flight.
Managed Redis services often refuse CONFIG (ElastiCache, Memorystore, Azure Cache rename or block
it): persistence is then reported unknown (-1), with one line, and nothing else changes.

Then, every second, it reads the fleet epoch (vidfleet_common.epoch). A missing or different epoch
means Redis lost its data: every job the coordinator knew to be running is written back, failed,
with the reason, and gets its `result.json`, so that `vidfleet status` and `submit --wait` say what
happened instead of 404 or waiting forever. Jobs nobody remembers (the coordinator restarted too)
are gone; their 404 names the data loss.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from vidfleet_common.errors import VidfleetError
from vidfleet_common.epoch import Epoch, FleetEpoch, data_lost_message
from vidfleet_common.jobs import JobRecord, JobState, JobStore
from vidfleet_common.redis_connection import report_failure
from vidfleet_common.results import JobResult, VideoOutcome, VideoResult, write_result
from vidfleet_common.settings import scrub_url
from vidfleet_coordinator.finalizer import KnownJobs, job_result

log = logging.getLogger("vidfleet.coordinator.redis")

CHECK_EVERY_SECONDS = 1.0
# /health reports a data loss this long after it happened (the metric and its alert keep it for good).
REPORT_LOSS_SECONDS = 3600.0
LOST_VIDEO_KIND = "redis_data_lost"


def read_persistence(redis: Any) -> tuple[int, str]:
    """(1, 'aof+rdb' | 'aof' | 'rdb'), (0, 'none') or (-1, why it is unknown)."""
    from redis.exceptions import ResponseError

    try:
        aof = redis.config_get("appendonly").get("appendonly") == "yes"
        save = str(redis.config_get("save").get("save", "")).strip()
    except ResponseError as exc:
        return -1, f"CONFIG GET refused ({scrub_url(str(exc))})"
    modes = [name for name, on in (("aof", aof), ("rdb", bool(save))) if on]
    return (1, "+".join(modes)) if modes else (0, "none")


class RedisWatch:
    def __init__(self, store: JobStore, known: KnownJobs, metrics: Any = None) -> None:
        self.store = store
        self.known = known
        self.metrics = metrics
        self.epochs = FleetEpoch(store.redis, store.keys)
        self.epoch: str | None = None
        self.persistence = (-1, "not read yet")
        self._lock = threading.Lock()

    def start(self) -> None:
        """Read persistence (warn once if there is none) and take the current epoch, creating it if absent."""
        self.persistence = read_persistence(self.store.redis)
        if self.metrics is not None:
            self.metrics.redis_persistent.set(self.persistence[0])
        if self.persistence[0] == 0:
            log.warning(
                "Redis has no persistence (appendonly no, no RDB snapshots): a restart of Redis loses every job in flight; "
                "turn on appendonly (the chart's bundled Redis has it on)"
            )
        elif self.persistence[0] < 0:
            log.info("Redis persistence unknown: %s; managed Redis usually persists, check its settings", self.persistence[1])
        self.epoch = self.epochs.ensure().id

    def current_epoch(self) -> str:
        """The epoch to dispatch a job in, checked against Redis now (a loss seen here is handled first)."""
        self.check()
        assert self.epoch is not None
        return self.epoch

    def check(self) -> bool:
        """True if Redis lost its data since the last check (and the jobs it took are failed).

        A concurrent caller waits until those jobs are written back: then it finds them."""
        with self._lock:
            if self.epoch is None:
                self.start()
                return False
            if self.epochs.current_id() == self.epoch:
                return False
            new = self.epochs.ensure(previous=self.epoch)
            lost_at = new.data_lost_at or time.time()
            self.epoch = new.id
            failed = self._fail_lost_jobs(new, lost_at)
        if self.metrics is not None:
            self.metrics.redis_data_loss.inc()
        log.error("%s: %d running jobs failed (%s); new fleet epoch %s", data_lost_message(lost_at), len(failed), ", ".join(failed) or "-", new.id)
        return True

    def data_lost_at(self) -> float | None:
        """When Redis last lost its data, if within REPORT_LOSS_SECONDS (read from the epoch: any replica knows)."""
        epoch = self.epochs.current()
        if epoch is None or epoch.data_lost_at is None or time.time() - epoch.data_lost_at > REPORT_LOSS_SECONDS:
            return None
        return epoch.data_lost_at

    def run_forever(self, stop: threading.Event, interval: float = CHECK_EVERY_SECONDS) -> None:
        while not stop.wait(interval):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - Redis restarting: check again next second
                report_failure(exc, log, "redis watch failed")

    def _fail_lost_jobs(self, epoch: Epoch, lost_at: float) -> list[str]:
        jobs = {record.job_id: (record, results) for record, results in self.known.take_all()}
        # Jobs recorded in the new Redis under an older epoch (submitted in the instant of the loss).
        for record in self.store.get_many(self.store.active_ids()):
            if record.epoch not in (None, epoch.id) and record.job_id not in jobs:
                jobs[record.job_id] = (record, self.store.results(record.job_id))
        for record, results in jobs.values():
            self._fail(record, results, lost_at)
        return sorted(jobs)

    def _fail(self, record: JobRecord, known: dict[str, VideoResult], lost_at: float) -> None:
        reason = data_lost_message(lost_at)
        videos = [
            known.get(v.name)
            or VideoResult(
                video=scrub_url(v.source), name=v.name, outcome=VideoOutcome.FAILED,
                error=f"{reason}; the video was never finished", error_kind=LOST_VIDEO_KIND,
            )
            for v in record.videos
        ]
        done = sum(1 for v in videos if v.ok)
        message = f"{reason} while the job ran: {done} of {len(videos)} videos had succeeded; submit the job again"
        result: JobResult = job_result(record, videos, cancelled=False).model_copy(update={"success": False, "state": "failed", "message": message})
        try:
            write_result(result, record.out_dir)
        except (OSError, VidfleetError) as exc:
            log.warning("job %s: result.json not written: %s", record.job_id, exc)
        record.state, record.message, record.finished_at = JobState.FAILED, message, result.finished_at
        self.store.restore_finished(record, videos)
        if self.metrics is not None:
            self.metrics.job_finished(result)
