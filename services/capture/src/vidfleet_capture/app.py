"""The capture service's Celery app: the `capture` task, one source per task, on queue `capture`.

The task is acknowledged on receipt (`acks_late=False`): a capture runs until its stream is
removed, and the coordinator restarts captures that die, so a redelivered message would only
double a stream. Worker shutdown asks every running capture to stop cleanly (state "stopped",
lock released) so that the coordinator can start it elsewhere at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from vidfleet_common.contracts import Queue, TaskName
from vidfleet_common.fleet import celery_config, redis_client
from vidfleet_common.settings import Settings, load_settings
from vidfleet_capture.metrics import CaptureMetrics
from vidfleet_common.worker_metrics import process_exited
from vidfleet_capture.task import run_capture_task

log = logging.getLogger("vidfleet.capture.worker")


class WorkerState:
    """Per process: Redis clients by URL (made after a pool fork), the metrics, the shutdown flag."""

    def __init__(self, settings: Settings, metrics: CaptureMetrics | None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.shutting_down = threading.Event()
        self._clients: dict[str | None, Any] = {}
        self._pid = 0
        self._lock = threading.Lock()

    def redis_for(self, url: str | None) -> Any:
        """The settings' Redis (url None), or the task's `broker` override; one client each per process."""
        with self._lock:
            if self._pid != os.getpid():
                self._clients, self._pid = {}, os.getpid()
            client = self._clients.get(url)
            if client is None:
                settings = self.settings
                if url:
                    settings = settings.model_copy(update={"broker_url": type(settings.broker_url)(url)})
                client = self._clients[url] = redis_client(settings)
            return client


def create_app(settings: Settings | None = None, *, metrics: CaptureMetrics | None = None) -> Any:
    from celery import Celery, signals

    settings = settings or load_settings()
    app = Celery("vidfleet-capture")
    app.conf.update(celery_config(settings))
    app.conf.task_default_queue = Queue.CAPTURE.value
    # Captures run for hours and are acknowledged on receipt, so the prefetch window would refill while
    # every slot is busy: a worker must take a capture only when it has a free slot, else the stream
    # waits in a worker that cannot run it instead of in the queue that scaling watches.
    app.conf.worker_disable_prefetch = True
    state = WorkerState(settings, metrics)
    app.vidfleet_state = state

    @app.task(name=TaskName.CAPTURE_STREAM.value, bind=True, acks_late=False, reject_on_worker_lost=False)
    def capture_stream(
        task: Any,
        infile: str | int | None = None,
        fps: float | None = None,
        output: str | None = None,
        broker: str | None = None,
        fmt: str = ".jpg",
        quality: int = 85,
        maxlen: int | None = None,
        count: int | None = None,
        stream: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        hostname = task.request.hostname or socket.gethostname()
        worker = f"{hostname}/{task.request.id or os.getpid()}"
        return run_capture_task(
            settings=state.settings, worker=worker, redis_for=state.redis_for, should_stop=state.shutting_down.is_set,
            metrics=state.metrics, infile=infile, fps=fps, output=output, broker=broker, fmt=fmt, quality=quality,
            maxlen=maxlen, count=count, stream=stream,
        )

    @signals.worker_shutting_down.connect(weak=False)
    def stop_captures(**_: Any) -> None:
        log.info("worker shutting down: stopping every capture")
        state.shutting_down.set()

    @signals.worker_process_shutdown.connect(weak=False)
    def forget_process(pid: int | None = None, **_: Any) -> None:
        process_exited(pid or os.getpid())

    return app
