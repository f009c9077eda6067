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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidfleet_common.chunks import chunk_unit, render_unit, stitch_unit
from vidfleet_common.epoch import DATA_LOST, FleetEpoch
from vidfleet_common.errors import ConfigError, ModelError
from vidfleet_common.fleet import DetectRequest
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.jobs import Holder, JobStore
from vidfleet_common.results import VideoOutcome, VideoResult
from vidfleet_common.settings import scrub_url
from vidfleet_common.validation import describe_validation_error
from vidfleet_detector.fleet.metrics import MetricsObserver, WorkerMetrics
from vidfleet_detector.model_runner import ModelRunner
from vidfleet_detector.pipeline import process_video
from vidfleet_detector.s3_output import process_to
from vidfleet_detector.split.render import join_video, render_chunk
from vidfleet_detector.split.run import stitch_video

log = logging.getLogger("vidfleet.detector.task")

PROGRESS_EVERY_S = 0.5
CANCEL_CHECK_EVERY_S = 1.0
RESULT_WRITE_DEADLINE_S = 300.0
DUPLICATE_POLL_S = 2.0


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


class _StopFlag:
    """should_stop for process_video, read at most every CANCEL_CHECK_EVERY_S: the job was cancelled, or
    Redis lost its data (the fleet epoch changed), so nobody is waiting for this video any more."""

    def __init__(self, store: JobStore, job_id: str, epoch: str | None) -> None:
        self.store, self.job_id, self.epoch = store, job_id, epoch
        self.epochs = FleetEpoch(store.redis, store.keys)
        self._checked = float("-inf")
        self.reason: str | None = None

    def __call__(self) -> bool:
        if self.reason is None and time.monotonic() - self._checked >= CANCEL_CHECK_EVERY_S:
            self._checked = time.monotonic()
            try:
                if self.store.is_cancelled(self.job_id):
                    self.reason = "cancelled"
                elif self.epoch is not None and self.epochs.current_id() != self.epoch:
                    self.reason = "data lost"
            except Exception:  # noqa: BLE001 - Redis away: keep going, ask again later
                pass
        return self.reason is not None


Liveness = Callable[[str], bool]


def run_detect(
    raw_request: Any,
    *,
    store: JobStore,
    models: ModelCache,
    holder: Holder,
    metrics: WorkerMetrics | None = None,
    is_alive: Liveness | None = None,
) -> dict[str, Any]:
    """The body of the `detect` task; returns the VideoResult as JSON.

    `holder` is this worker (hostname and process incarnation); `is_alive` tells whether another
    incarnation still beats (vidfleet_common.heartbeats), for a message delivered twice.
    """
    try:
        request = DetectRequest.model_validate(raw_request)
    except ValidationError as exc:
        return _invalid_request(raw_request, describe_validation_error(exc, what="task field"), store, metrics)
    job_id, video, chunk = request.job_id, request.video, request.chunk
    ref = VideoRef(video.source, video.name, video.error, video.error_kind)
    unit = video.name if chunk is None else chunk_unit(video.name, chunk.index)  # what the job record keys this run by
    stale = _stale_reason(store, request)
    if stale is not None:
        log.warning("job %s video %s: %s; message dropped", job_id, unit, stale)
        return _ended(ref, VideoOutcome.CANCELLED, stale, "stale", holder.worker, unit).model_dump(mode="json")
    if store.is_cancelled(job_id):
        result = _ended(ref, VideoOutcome.CANCELLED, "cancelled", "cancelled", holder.worker, unit)
        return _report(store, job_id, result, metrics, started=None, epoch=request.epoch)
    done = _done_elsewhere(store, job_id, unit, holder, is_alive)
    if done is not None:
        log.info("job %s video %s: already %s by %s; this copy of its message is acknowledged unrun", job_id, unit, done.outcome.value, done.worker)
        return done.model_dump(mode="json")
    started = time.perf_counter()
    attempt = store.video_started(job_id, unit, holder)
    where = f", {chunk.span()}" if chunk is not None else ""
    log.info("job %s video %s: start (%s%s)%s", job_id, unit, ref.display, where, f", attempt {attempt}" if attempt > 1 else "")
    if metrics is not None:
        metrics.tasks_running.inc()
    try:
        try:
            config = JobConfig.from_mapping(request.config)
            runner = models.runner(config)
        except (ConfigError, ModelError) as exc:
            kind = "config" if isinstance(exc, ConfigError) else "model"
            failed = _ended(ref, VideoOutcome.FAILED, str(exc), kind, holder.worker, unit).model_copy(update={"attempts": attempt})
            return _report(store, job_id, failed, metrics, started=started, epoch=request.epoch)
        observer = MetricsObserver(metrics, runner.names, runner.device) if metrics is not None else None
        stop = _StopFlag(store, job_id, request.epoch)
        if metrics is not None and config.counting and chunk is None:
            metrics.counting.video_started(config, runner.names)
        try:
            # An s3:// out_dir: outputs staged on this worker's disk, uploaded once the video succeeded (never a chunk:
            # dispatch splits only into a shared folder).
            result = process_to(
                request.out_dir,
                lambda folder: process_video(
                    ref, config, runner, folder,
                    progress=_ProgressToRedis(store, job_id, unit), should_stop=stop, observer=observer, temp_owner=holder.incarnation,
                    chunk=chunk,
                ),
                owner=holder.incarnation,
            )
        finally:
            if observer is not None:
                observer.close()
        result = result.model_copy(update={"worker": holder.worker, "attempts": attempt})
        if video.warning and result.ok:
            result = result.model_copy(update={"warning": "; ".join(w for w in (result.warning, video.warning) if w)})
        if metrics is not None and result.counts is not None and chunk is None:  # a chunk's counts include its lead-in
            metrics.counting.video_counted(config, runner.names, result.counts)
        return _report(store, job_id, result, metrics, started=started, epoch=request.epoch, video=chunk is None)
    finally:
        if metrics is not None:
            metrics.tasks_running.dec()


def _stale_reason(store: JobStore, request: DetectRequest) -> str | None:
    """Why this message belongs to a job that is gone or over (None: run it)."""
    epoch = FleetEpoch(store.redis, store.keys).current_id() if request.epoch else None
    if request.epoch and epoch != request.epoch:
        return f"dispatched before {DATA_LOST} (fleet epoch {request.epoch}, now {epoch or 'none'})"
    record = store.get(request.job_id)
    if record is None:
        return "its job is not in Redis any more"
    if record.state.finished:
        return f"its job already ended ({record.state.value})"
    return None


def _done_elsewhere(store: JobStore, job_id: str, name: str, me: Holder, is_alive: Liveness | None) -> VideoResult | None:
    """A video already done, or running on another live worker process: a copy of its message was delivered
    again (a message restored after a connection reset, say). Wait for that run rather than run it twice;
    if that worker dies meanwhile, run it here (None)."""
    announced = False
    while True:
        earlier = store.results(job_id).get(name)
        if earlier is not None and earlier.ok:
            return earlier
        holder = store.holders(job_id).get(name)
        if holder is None or holder.incarnation in (None, me.incarnation) or is_alive is None or not is_alive(holder.incarnation):
            return None
        if store.is_cancelled(job_id):
            return None
        if not announced:
            log.warning("job %s video %s: delivered again while %s runs it; waiting for that run", job_id, name, holder.worker)
            announced = True
        time.sleep(DUPLICATE_POLL_S)


def _report(
    store: JobStore, job_id: str, result: VideoResult, metrics: WorkerMetrics | None, *, started: float | None, epoch: str | None = None,
    video: bool = True, decoded: bool = True,
) -> dict[str, Any]:
    """Record the result and count it: `video` False for a chunk (its stitch counts the video), `decoded` False
    for a stitch (its chunks counted the frames they decoded)."""
    if not _record(store, job_id, result, epoch):
        log.warning("job %s video %s: %s while it ran; its result is dropped with its job", job_id, result.name, DATA_LOST)
        return result.model_dump(mode="json")
    if metrics is not None:
        if video:
            metrics.videos.labels(outcome=result.outcome.value).inc()
        if decoded:
            metrics.frames_decoded.inc(result.frames)
        if result.video_fps and video:
            metrics.video_seconds.inc(result.frames / result.video_fps)
        if result.outcome is VideoOutcome.FAILED:
            metrics.errors.labels(kind=result.error_kind or "internal").inc()
    seconds = f"{time.perf_counter() - started:.2f}s" if started is not None else "-"
    log.info(
        "job %s video %s: %s, %d frames, %d tracks, %s%s",
        job_id, result.name, result.outcome.value, result.frames, result.tracks, seconds, f", error: {result.error}" if result.error else "",
    )
    return result.model_dump(mode="json")


def _record(store: JobStore, job_id: str, result: VideoResult, epoch: str | None = None) -> bool:
    """Write the result, riding out a Redis restart; past the deadline, raise (the task requeues itself).

    False when Redis lost its data since the job was dispatched (the fleet epoch changed): nothing is written.
    """
    deadline = time.monotonic() + RESULT_WRITE_DEADLINE_S
    while True:
        try:
            if not result.ok:
                earlier = store.results(job_id).get(result.name)
                if earlier is not None and earlier.ok:
                    return True  # a redelivered copy failed (say, cancelled late) after the first one succeeded: keep that
            return store.video_finished(job_id, result, epoch=epoch)
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("job %s video %s: result not recorded yet (%s), retrying", job_id, result.name, scrub_url(str(exc)))
            time.sleep(2.0)


def _ended(ref: VideoRef, outcome: VideoOutcome, error: str, kind: str, hostname: str, name: str | None = None) -> VideoResult:
    return VideoResult(video=ref.display, name=name or ref.name, outcome=outcome, error=error, error_kind=kind, worker=hostname)


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


def run_stitch(raw_request: Any, **context: Any) -> dict[str, Any]:
    """The `stitch` task: a split video's chunk results into the video's (vidfleet_detector.split). With
    `visualize` its result is kept under `<video>.stitch` until the annotated parts are drawn and joined."""

    def stitch(request: DetectRequest, ref: VideoRef, config: JobConfig, names: dict[int, str], results: dict[str, VideoResult], owner: str | None) -> VideoResult:
        chunks = [results[unit] for unit in request.video.units()]
        result = stitch_video(ref, config, request.video.chunks, chunks, Path(request.out_dir), names=names, temp_owner=owner)
        return result.model_copy(update={"name": stitch_unit(ref.name)}) if config.visualize and result.ok else result

    def unit(request: DetectRequest) -> str:
        return stitch_unit(request.video.name) if request.config.get("visualize") else request.video.name

    return _run_step(raw_request, "stitch", unit, stitch, needs=lambda r: r.video.units(), counted=True, **context)


def run_render(raw_request: Any, **context: Any) -> dict[str, Any]:
    """The `render` task: one chunk's part of a split video's annotated video, with the stitched ids."""

    def render(request: DetectRequest, ref: VideoRef, config: JobConfig, names: dict[int, str], results: dict[str, VideoResult], owner: str | None) -> VideoResult:
        stitched = results[stitch_unit(ref.name)]
        return render_chunk(ref, config, request.chunk, Path(request.out_dir), names=names, width=stitched.width or 0,  # type: ignore[arg-type]
                            height=stitched.height or 0, events=stitched.outputs.events, temp_owner=owner)

    def unit(request: DetectRequest) -> str:
        return render_unit(request.video.name, request.chunk.index if request.chunk else 0)

    return _run_step(raw_request, "render", unit, render, needs=lambda r: [stitch_unit(r.video.name)], counted=False, **context)


def run_join(raw_request: Any, **context: Any) -> dict[str, Any]:
    """The `join` task: the chunks' parts into the annotated video, and the video's result."""

    def join(request: DetectRequest, ref: VideoRef, config: JobConfig, names: dict[int, str], results: dict[str, VideoResult], owner: str | None) -> VideoResult:
        parts = [results[render_unit(ref.name, c.index)] for c in request.video.chunks]
        return join_video(results[stitch_unit(ref.name)], parts, Path(request.out_dir), name=ref.name, keep=config.save_intermediate_results,
                          temp_owner=owner)

    def needs(request: DetectRequest) -> list[str]:
        return [stitch_unit(request.video.name), *(render_unit(request.video.name, c.index) for c in request.video.chunks)]

    return _run_step(raw_request, "join", lambda r: r.video.name, join, needs=needs, counted=True, **context)


def _run_step(
    raw_request: Any,
    what: str,
    unit_of: Callable[[DetectRequest], str],
    body: Callable[..., VideoResult],
    *,
    needs: Callable[[DetectRequest], list[str]],
    counted: bool,
    store: JobStore,
    models: ModelCache,
    holder: Holder,
    metrics: WorkerMetrics | None = None,
    is_alive: Liveness | None = None,
) -> dict[str, Any]:
    """A step of a split video after its chunks, run and recorded like a video under its own unit name."""
    try:
        request = DetectRequest.model_validate(raw_request)
    except ValidationError as exc:
        return _invalid_request(raw_request, describe_validation_error(exc, what="task field"), store, metrics)
    job_id, video = request.job_id, request.video
    ref = VideoRef(video.source, video.name, video.error, video.error_kind)
    unit = unit_of(request)
    stale = _stale_reason(store, request)
    if stale is not None:
        log.warning("job %s video %s: %s; %s message dropped", job_id, unit, stale, what)
        return _ended(ref, VideoOutcome.CANCELLED, stale, "stale", holder.worker, unit).model_dump(mode="json")
    done = _done_elsewhere(store, job_id, unit, holder, is_alive)
    if done is not None:
        return done.model_dump(mode="json")
    started = time.perf_counter()
    attempt = store.video_started(job_id, unit, holder)
    results = store.results(job_id)
    missing = [u for u in needs(request) if u not in results]
    if missing:  # cannot happen: the finalizer sends a step once what it needs has a result
        failed = _ended(ref, VideoOutcome.FAILED, f"{ref.display}: {what} sent before {', '.join(missing)} ended", "internal", holder.worker, unit)
        return _report(store, job_id, failed, metrics, started=started, epoch=request.epoch, video=False, decoded=False)
    try:
        config = JobConfig.from_mapping(request.config)
        names = models.runner(config).names
    except (ConfigError, ModelError) as exc:
        kind = "config" if isinstance(exc, ConfigError) else "model"
        failed = _ended(ref, VideoOutcome.FAILED, str(exc), kind, holder.worker, unit)
        return _report(store, job_id, failed, metrics, started=started, epoch=request.epoch, video=False, decoded=False)
    result = body(request, ref, config, names, results, holder.incarnation)
    log.info("job %s video %s: %s done in %.2fs", job_id, unit, what, time.perf_counter() - started)
    result = result.model_copy(update={"worker": holder.worker, "attempts": max(result.attempts, attempt)})
    final = result.name == video.name
    if metrics is not None and final and result.counts is not None:
        metrics.counting.video_counted(config, names, result.counts)
    return _report(store, job_id, result, metrics, started=started, epoch=request.epoch, video=final and counted, decoded=False)
