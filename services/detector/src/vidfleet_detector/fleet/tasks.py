"""The `detect` task: one video of one job through `process_video`, reported into the job record.

Failures are data: a bad video, a bad config or a model that will not load end as a failed
VideoResult in the job record, never as a task retry. Only a result that cannot be written to
Redis (down for minutes) raises; the task wrapper turns that into a Celery `Reject(requeue=True)`,
since Celery acknowledges a task that raises and the message would be lost.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidfleet_common.errors import ConfigError, ModelError
from vidfleet_common.fleet import DetectRequest
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.jobs import JobStore
from vidfleet_common.results import VideoOutcome, VideoResult
from vidfleet_common.settings import scrub_url
from vidfleet_common.validation import describe_validation_error
from vidfleet_detector.fleet.metrics import MetricsObserver, WorkerMetrics
from vidfleet_detector.model_runner import ModelRunner
from vidfleet_detector.pipeline import process_video

log = logging.getLogger("vidfleet.detector.task")

PROGRESS_EVERY_S = 0.5
CANCEL_CHECK_EVERY_S = 1.0
RESULT_WRITE_DEADLINE_S = 300.0


class ModelCache:
    """Models loaded in this process, by name: loaded once, reused by every task that names them."""

    def __init__(self, metrics: WorkerMetrics | None = None) -> None:
        self.metrics = metrics
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def runner(self, config: JobConfig) -> ModelRunner:
        with self._lock:
            loaded = self._loaded.get(config.model)
            if loaded is not None:
                return ModelRunner(config, loaded=loaded)
            started = time.perf_counter()
            runner = ModelRunner(config)
            self._loaded[config.model] = runner.model
            self.loads += 1
            if self.metrics is not None:
                self.metrics.model_load_seconds.observe(time.perf_counter() - started)
                self.metrics.model_loaded(config.model, runner.device)
            log.info("model %s loaded in %.1fs (device %s)", config.model, time.perf_counter() - started, runner.device)
            return runner


class _ProgressToRedis:
    """ProgressSink: frames read, written to the job record at most every PROGRESS_EVERY_S."""

    def __init__(self, store: JobStore, job_id: str, name: str) -> None:
        self.store, self.job_id, self.name = store, job_id, name
        self._last = 0.0

    def start(self, ref: VideoRef, total_frames: int | None) -> None:
        self._write(0)

    def advance(self, frames_read: int) -> None:
        if time.monotonic() - self._last >= PROGRESS_EVERY_S:
            self._write(frames_read)

    def finish(self, result: VideoResult) -> None:
        pass  # the result itself carries the final count

    def _write(self, frames: int) -> None:
        self._last = time.monotonic()
        try:
            self.store.video_progress(self.job_id, self.name, frames)
        except Exception as exc:  # noqa: BLE001 - progress is a courtesy; the video goes on
            log.warning("job %s video %s: progress not recorded: %s", self.job_id, self.name, type(exc).__name__)


class _CancelFlag:
    """should_stop for process_video: the job's cancel flag, read at most every CANCEL_CHECK_EVERY_S."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._checked = float("-inf")
        self._cancelled = False

    def __call__(self) -> bool:
        if not self._cancelled and time.monotonic() - self._checked >= CANCEL_CHECK_EVERY_S:
            self._checked = time.monotonic()
            try:
                self._cancelled = self.store.is_cancelled(self.job_id)
            except Exception:  # noqa: BLE001 - Redis away: keep going, ask again later
                pass
        return self._cancelled


def run_detect(
    raw_request: Any, *, store: JobStore, models: ModelCache, hostname: str, metrics: WorkerMetrics | None = None
) -> dict[str, Any]:
    """The body of the `detect` task; returns the VideoResult as JSON."""
    try:
        request = DetectRequest.model_validate(raw_request)
    except ValidationError as exc:
        return _invalid_request(raw_request, describe_validation_error(exc, what="task field"), store, metrics)
    job_id, video = request.job_id, request.video
    ref = VideoRef(video.source, video.name, video.error, video.error_kind)
    if store.is_cancelled(job_id):
        result = _ended(ref, VideoOutcome.CANCELLED, "cancelled", "cancelled", hostname)
        return _report(store, job_id, result, metrics, started=None)
    started = time.perf_counter()
    log.info("job %s video %s: start (%s)", job_id, video.name, ref.display)
    store.video_started(job_id, video.name, hostname)
    if metrics is not None:
        metrics.tasks_running.inc()
    try:
        try:
            config = JobConfig.from_mapping(request.config)
            runner = models.runner(config)
        except (ConfigError, ModelError) as exc:
            kind = "config" if isinstance(exc, ConfigError) else "model"
            return _report(store, job_id, _ended(ref, VideoOutcome.FAILED, str(exc), kind, hostname), metrics, started=started)
        observer = MetricsObserver(metrics, runner.names, runner.device) if metrics is not None else None
        if metrics is not None and config.counting:
            metrics.counting.video_started(config, runner.names)
        try:
            result = process_video(
                ref, config, runner, Path(request.out_dir),
                progress=_ProgressToRedis(store, job_id, video.name), should_stop=_CancelFlag(store, job_id), observer=observer,
            )
        finally:
            if observer is not None:
                observer.close()
        result = result.model_copy(update={"worker": hostname})
        if metrics is not None and result.counts is not None:
            metrics.counting.video_counted(config, runner.names, result.counts)
        return _report(store, job_id, result, metrics, started=started)
    finally:
        if metrics is not None:
            metrics.tasks_running.dec()


def _report(store: JobStore, job_id: str, result: VideoResult, metrics: WorkerMetrics | None, *, started: float | None) -> dict[str, Any]:
    _record(store, job_id, result)
    if metrics is not None:
        metrics.videos.labels(outcome=result.outcome.value).inc()
        metrics.frames_decoded.inc(result.frames)
        if result.video_fps:
            metrics.video_seconds.inc(result.frames / result.video_fps)
        if result.outcome is VideoOutcome.FAILED:
            metrics.errors.labels(kind=result.error_kind or "internal").inc()
    seconds = f"{time.perf_counter() - started:.2f}s" if started is not None else "-"
    log.info(
        "job %s video %s: %s, %d frames, %d tracks, %s%s",
        job_id, result.name, result.outcome.value, result.frames, result.tracks, seconds, f", error: {result.error}" if result.error else "",
    )
    return result.model_dump(mode="json")


def _record(store: JobStore, job_id: str, result: VideoResult) -> None:
    """Write the result, riding out a Redis restart; past the deadline, raise (the task requeues itself)."""
    deadline = time.monotonic() + RESULT_WRITE_DEADLINE_S
    while True:
        try:
            if not result.ok:
                earlier = store.results(job_id).get(result.name)
                if earlier is not None and earlier.ok:
                    return  # a redelivered copy failed (say, cancelled late) after the first one succeeded: keep that
            store.video_finished(job_id, result)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("job %s video %s: result not recorded yet (%s), retrying", job_id, result.name, scrub_url(str(exc)))
            time.sleep(2.0)


def _ended(ref: VideoRef, outcome: VideoOutcome, error: str, kind: str, hostname: str) -> VideoResult:
    return VideoResult(video=ref.display, name=ref.name, outcome=outcome, error=error, error_kind=kind, worker=hostname)


def _invalid_request(raw: Any, reason: str, store: JobStore, metrics: WorkerMetrics | None) -> dict[str, Any]:
    """A message that is not a DetectRequest: recorded against its job when it names one, else only logged."""
    job_id = raw.get("job_id") if isinstance(raw, dict) else None
    video = raw.get("video") if isinstance(raw, dict) else None
    name = video.get("name") if isinstance(video, dict) else None
    message = f"invalid detect request: {reason}"
    log.error("%s (job %s, video %s)", message, job_id, name)
    result = VideoResult(video=str(name or "?"), name=str(name or "?"), outcome=VideoOutcome.FAILED, error=message, error_kind="request")
    if metrics is not None:
        metrics.errors.labels(kind="request").inc()
    if isinstance(job_id, str) and isinstance(name, str):
        _record(store, job_id, result)
    return result.model_dump(mode="json")
