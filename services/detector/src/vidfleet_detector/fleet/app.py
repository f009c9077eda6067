"""The detector's Celery app: the `detect` task and what each worker process keeps between tasks."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from vidfleet_common.contracts import RedisKeys, TaskName
from vidfleet_common.fleet import celery_config, redis_client
from vidfleet_common.job_config import JobConfig
from vidfleet_common.jobs import JobStore
from vidfleet_common.settings import Settings, load_settings, scrub_url
from vidfleet_common.worker_metrics import process_exited
from vidfleet_detector.fleet.metrics import WorkerMetrics
from vidfleet_detector.fleet.tasks import ModelCache, run_detect

log = logging.getLogger("vidfleet.detector.worker")


class WorkerState:
    """Per process: a Redis client (made after the pool forks), the loaded models, the metrics."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics | None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.models = ModelCache(metrics)
        self._store: JobStore | None = None
        self._pid = 0

    @property
    def store(self) -> JobStore:
        if self._store is None or self._pid != os.getpid():
            self._store = JobStore(redis_client(self.settings), RedisKeys(self.settings.key_prefix))
            self._pid = os.getpid()
        return self._store


def create_app(settings: Settings | None = None, *, metrics: WorkerMetrics | None = None, preload_model: str | None = None) -> Any:
    from celery import Celery, signals
    from celery.exceptions import Reject

    settings = settings or load_settings()
    app = Celery("vidfleet-detector")
    app.conf.update(celery_config(settings))
    state = WorkerState(settings, metrics)
    app.vidfleet_state = state

    @app.task(name=TaskName.DETECT_VIDEO.value, bind=True)
    def detect_video(task: Any, request: Any) -> dict[str, Any]:
        hostname = task.request.hostname or socket.gethostname()
        try:
            return run_detect(request, store=state.store, models=state.models, hostname=hostname, metrics=state.metrics)
        except Exception as exc:
            # The result could not be recorded (Redis gone for minutes). Celery acknowledges a task that
            # raises, which would drop the video for good: reject it back into the queue instead.
            log.error("task %s: result not recorded (%s); back to the queue", task.request.id, scrub_url(str(exc)))
            raise Reject(scrub_url(str(exc)), requeue=True) from exc

    @signals.worker_process_init.connect(weak=False)
    def load_model_early(**_: Any) -> None:
        if preload_model:
            state.models.runner(JobConfig(model=preload_model))

    @signals.worker_process_shutdown.connect(weak=False)
    def forget_process(pid: int | None = None, **_: Any) -> None:
        process_exited(pid or os.getpid())

    return app
