"""Finish jobs: once every video of a job has a result, write `result.json` and close the record.

This is the "finalize" half of the chord, done by the coordinator rather than by a Celery chord:
a chord's counter lives in the result backend and does not survive a worker killed mid-video
(the redelivered task would count twice or never) nor a Redis restart between the header and the
callback. The job record in Redis is the single source of truth, and finalising is idempotent.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vidfleet_common.buckets import is_s3
from vidfleet_common.counts import sum_counts
from vidfleet_common.errors import VidfleetError
from vidfleet_common.jobs import JobRecord, JobState, JobStore, JobVideo
from vidfleet_common.results import JobResult, VideoOutcome, VideoResult, job_state, now_iso, versions, write_result
from vidfleet_common.redis_connection import report_failure
from vidfleet_common.staging import remove_temp_files
from vidfleet_common.chunks import Chunk, render_unit, stitch_unit
from vidfleet_common.contracts import TaskName
from vidfleet_coordinator.dispatch import send_step
from vidfleet_coordinator.metrics import CoordinatorMetrics

log = logging.getLogger("vidfleet.coordinator.finalizer")

# A finalising coordinator holds the job's lock this long (another replica may take over after).
LOCK_SECONDS = 60


@dataclass
class KnownJobs:
    """Active jobs as the finalizer last read them: what the coordinator still knows once Redis forgot."""

    _jobs: dict[str, tuple[JobRecord, dict[str, VideoResult]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, record: JobRecord, results: dict[str, VideoResult]) -> None:
        with self._lock:
            self._jobs[record.job_id] = (record, dict(results))

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def take_all(self) -> list[tuple[JobRecord, dict[str, VideoResult]]]:
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        return jobs


class Finalizer:
    def __init__(
        self, store: JobStore, metrics: CoordinatorMetrics | None = None, known: KnownJobs | None = None, celery_app: Any = None
    ) -> None:
        self.store = store
        self.celery_app = celery_app  # sends the stitch tasks of split videos
        self.metrics = metrics
        self.known = known if known is not None else KnownJobs()

    def run_once(self) -> list[str]:
        """Advance every active job; returns the ids finalised in this pass."""
        finished: list[str] = []
        for job_id in self.store.active_ids():
            record = self.store.get(job_id)
            if record is None:
                self.store.redis.srem(self.store.keys.active_jobs(), job_id)
                self.known.forget(job_id)
                continue
            if self._advance(record):
                finished.append(job_id)
        return finished

    def run_forever(self, stop: threading.Event, interval: float = 0.25) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - Redis restarting: try again next pass
                report_failure(exc, log, "finalizer pass failed")
                stop.wait(2.0)
            stop.wait(interval)

    def _stitch_ready(self, record: JobRecord, results: dict[str, VideoResult]) -> None:
        """Advance every split video whose chunks all have a result: stitch; with `visualize`, then draw each
        chunk's part of the annotated video and join the parts. Each step is sent once."""
        if self.celery_app is None:
            return  # a finalizer that only reads (tests of result.json): nobody stitches
        for video in record.videos:
            if not video.chunks or video.name in results or not all(unit in results for unit in video.units()):
                continue
            visualize = bool(record.config.get("visualize"))
            stitched = stitch_unit(video.name) if visualize else video.name
            if stitched not in results:
                self._send_once(record, video, TaskName.STITCH_VIDEO, stitched)
                continue
            if not results[stitched].ok:  # nothing to draw: the video ends with the stitch's failure
                self.store.video_finished(record.job_id, results[stitched].model_copy(update={"name": video.name}), epoch=record.epoch)
                continue
            parts = [render_unit(video.name, c.index) for c in video.chunks]
            for chunk, part in zip(video.chunks, parts):
                if part not in results:
                    self._send_once(record, video, TaskName.RENDER_CHUNK, part, chunk)
            if all(part in results for part in parts):
                self._send_once(record, video, TaskName.JOIN_VIDEO, video.name)

    def _send_once(self, record: JobRecord, video: JobVideo, task: TaskName, unit: str, chunk: Chunk | None = None) -> None:
        if self.store.stitch_once(record.job_id, unit):
            send_step(self.celery_app, record, video, task, unit, chunk)
            log.info("job %s video %s: %s sent", record.job_id, unit, task.value)

    def _advance(self, record: JobRecord) -> bool:
        results = self.store.results(record.job_id)
        self.known.remember(record, results)
        names = [v.name for v in record.videos]
        self._stitch_ready(record, results)
        if not all(name in results for name in names):
            if record.state is JobState.QUEUED and (results or self.store.running(record.job_id) or self.store.progress(record.job_id)):
                record.state = JobState.RUNNING
                self.store.save(record)
            return False
        lock = self.store.keys.job_finalizing(record.job_id)
        if not self.store.redis.set(lock, "1", nx=True, ex=LOCK_SECONDS):
            return False  # another coordinator replica is on it
        videos = [results[name] for name in names]
        cancelled = self.store.is_cancelled(record.job_id)
        result = job_result(record, videos, cancelled=cancelled)
        try:
            write_result(result, record.out_dir)
        except VidfleetError as exc:  # the bucket refuses or its endpoint is away: the next pass tries again
            log.warning("job %s: result.json not written yet: %s", record.job_id, exc)
            self.store.redis.delete(lock)
            return False
        if not is_s3(record.out_dir):  # a bucket holds no temporary objects: workers stage on their own disk
            remove_temp_files(Path(record.out_dir))  # a killed worker's leftovers: every video has its result, nobody owns them
        record.state = JobState(result.state)
        record.finished_at = result.finished_at
        record.message = result.message
        self.store.mark_finished(record)
        self.known.forget(record.job_id)
        if self.metrics is not None:
            self.metrics.job_finished(result)
        log.info("job %s %s: %s", record.job_id, result.state, result.message)
        return True


def job_result(record: JobRecord, videos: list[VideoResult], *, cancelled: bool) -> JobResult:
    """The job's result.json from its record and every video's result."""
    state = "cancelled" if cancelled else job_state(videos)
    counts = {o: sum(1 for v in videos if v.outcome is o) for o in VideoOutcome}
    ok, failed, skipped = counts[VideoOutcome.SUCCEEDED], counts[VideoOutcome.FAILED], counts[VideoOutcome.CANCELLED]
    if not videos:
        message = "no videos to process"
    elif state == "cancelled":
        message = f"cancelled: {ok} of {len(videos)} videos succeeded, {failed} failed, {skipped} cancelled"
    elif failed:
        message = f"{ok} of {len(videos)} videos succeeded, {failed} failed"
    else:
        message = f"all {len(videos)} videos succeeded" if len(videos) > 1 else "the video succeeded"
    finished_at = now_iso()
    total = (datetime.fromisoformat(finished_at) - datetime.fromisoformat(record.created_at)).total_seconds()
    return JobResult(
        job_id=record.job_id,
        success=state == "succeeded",
        state=state,
        message=message,
        videos=videos,
        counts=sum_counts(v.counts for v in videos),
        config=record.config,
        versions=versions(),
        timings={"total_s": round(max(total, 0.0), 3), "video_s": round(sum(v.seconds for v in videos), 3)},
        started_at=record.created_at,
        finished_at=finished_at,
    )


