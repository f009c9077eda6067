"""The detector's Celery app: the `detect` task and what each worker process keeps between tasks."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from vidfleet_common.contracts import RedisKeys, TaskName
from vidfleet_common.fleet import celery_config, redis_client
from vidfleet_common.heartbeats import HeartbeatThread, WorkerHeartbeats, heartbeat_interval, new_incarnation
from vidfleet_common.job_config import JobConfig
from vidfleet_common.jobs import Holder, JobStore
from vidfleet_common.redis_connection import REPORT
from vidfleet_common.settings import Settings, load_settings, scrub_url
from vidfleet_common.worker_metrics import process_exited
from vidfleet_detector.fleet.metrics import WorkerMetrics
from vidfleet_detector.fleet.tasks import ModelCache, run_detect, run_join, run_render, run_stitch
from vidfleet_detector.s3_output import remove_stale_staging

log = logging.getLogger("vidfleet.detector.worker")


class WorkerState:
    """Per worker: its incarnation (one per start of the worker's main process, shared by its pool processes);
    per process: a Redis client (made after the pool forks), the loaded models, the metrics."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics | None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.models = ModelCache(metrics)
        self.incarnation = new_incarnation()
        self.heartbeat: HeartbeatThread | None = None
        self._store: JobStore | None = None
        self._pid = 0

    @property
    def store(self) -> JobStore:
        if self._store is None or self._pid != os.getpid():
            self._store = JobStore(redis_client(self.settings), RedisKeys(self.settings.key_prefix))
            self._pid = os.getpid()
        return self._store

    def heartbeats(self) -> WorkerHeartbeats:
        return WorkerHeartbeats(self.store.redis, self.store.keys)

    def is_alive(self, incarnation: str) -> bool:
        return self.heartbeats().is_alive(incarnation, within=self.settings.worker_lost_seconds)

    def start_heartbeat(self, hostname: str) -> None:
        """In the worker's main process: the process that holds the unacknowledged messages."""
        interval = heartbeat_interval(self.settings.worker_lost_seconds)
        self.heartbeat = HeartbeatThread(self.heartbeats(), self.incarnation, interval, worker=hostname).start()
        log.info("worker %s: incarnation %s, heartbeat every %.1fs", hostname, self.incarnation, interval)

    def stop_heartbeat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None


def _remove_stale_staging(state: WorkerState) -> None:
    """Outputs staged for a bucket by a worker process that was killed (vidfleet_detector.s3_output)."""
    try:
        removed = remove_stale_staging(state.is_alive, state.incarnation)
    except Exception as exc:  # noqa: BLE001 - Redis away: next time
        log.debug("stale staging folders not checked: %s", type(exc).__name__)
        return
    if removed:
        log.info("removed %d staging folders of killed worker processes", len(removed))


def create_app(settings: Settings | None = None, *, metrics: WorkerMetrics | None = None, preload_model: str | None = None) -> Any:
    from celery import Celery, signals
    from celery.exceptions import Reject

    settings = settings or load_settings()
    app = Celery("vidfleet-detector")
    app.conf.update(celery_config(settings))
    state = WorkerState(settings, metrics)
    app.vidfleet_state = state

    def recorded_task(name: TaskName, body: Any) -> None:
        """A task whose body records its own result in the job store: a video, a chunk, or a later step of a
        split video (vidfleet_detector.split)."""

        @app.task(name=name.value, bind=True)
        def task_body(task: Any, request: Any) -> dict[str, Any]:
            holder = Holder(task.request.hostname or socket.gethostname(), state.incarnation)
            try:
                return body(request, store=state.store, models=state.models, holder=holder, metrics=state.metrics, is_alive=state.is_alive)
            except Exception as exc:
                # The result could not be recorded (Redis gone for minutes). Celery acknowledges a task that
                # raises, which would drop the video for good: reject it back into the queue instead.
                log.error("task %s: result not recorded (%s); back to the queue", task.request.id, scrub_url(str(exc)))
                raise Reject(scrub_url(str(exc)), requeue=True) from exc
            finally:
                _remove_stale_staging(state)

    recorded_task(TaskName.DETECT_VIDEO, run_detect)
    recorded_task(TaskName.STITCH_VIDEO, run_stitch)
    recorded_task(TaskName.RENDER_CHUNK, run_render)
    recorded_task(TaskName.JOIN_VIDEO, run_join)

    @signals.worker_ready.connect(weak=False)
    def start_heartbeat(sender: Any = None, **_: Any) -> None:
        state.start_heartbeat(getattr(sender, "hostname", None) or socket.gethostname())

    @signals.worker_shutdown.connect(weak=False)
    def stop_heartbeat(**_: Any) -> None:
        state.stop_heartbeat()  # after a warm shutdown has finished the videos in hand

    @signals.worker_process_init.connect(weak=False)
    def load_model_early(**_: Any) -> None:
        REPORT.service = f"detector worker pool process {os.getpid()}"
        if preload_model:
            state.models.runner(JobConfig(model=preload_model))

    @signals.worker_process_shutdown.connect(weak=False)
    def forget_process(pid: int | None = None, **_: Any) -> None:
        process_exited(pid or os.getpid())

    return app
