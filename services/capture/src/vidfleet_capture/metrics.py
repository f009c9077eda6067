"""The capture worker's Prometheus metrics, summed over its Celery pool processes.

prometheus_client's multiprocess mode (as in the detector worker): every process writes its
samples under PROMETHEUS_MULTIPROC_DIR, which `vidfleet-capture worker` sets and empties before
anything imports prometheus_client; the main process serves the sum. With the default thread pool
there is one process, and the same code serves it.
"""

from __future__ import annotations

from typing import Any

from vidfleet_common import metric_names as m
from vidfleet_common.worker_metrics import create_metric

# Every kind the capture counts, created at zero for each stream so that `increase()` sees the first error.
ERROR_KINDS = ("open", "read", "encode", "redis")


class CaptureMetrics:
    """The metric objects; create after `prepare_multiprocess_dir` in the worker, or on a private registry in tests."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY

        registry = REGISTRY if registry is None else registry
        self.frames = create_metric(m.CAPTURE_FRAMES, registry)
        self.reconnects = create_metric(m.CAPTURE_RECONNECTS, registry)
        self.errors = create_metric(m.CAPTURE_ERRORS, registry)
        self.fps = create_metric(m.CAPTURE_FPS, registry, multiprocess_mode="livesum")
        self.redis_reconnects = create_metric(m.REDIS_RECONNECTS, registry)

    def for_stream(self, stream: str) -> StreamMetrics:
        return StreamMetrics(self, stream)


class StreamMetrics:
    """One stream's label children, looked up once (the capture threads increment them per frame)."""

    def __init__(self, metrics: CaptureMetrics, stream: str) -> None:
        self._metrics = metrics
        self.stream = stream
        self.read = metrics.frames.labels(stream=stream, stage="read")
        self.encoded = metrics.frames.labels(stream=stream, stage="encoded")
        self.appended = metrics.frames.labels(stream=stream, stage="appended")
        self.reconnects = metrics.reconnects.labels(stream=stream)
        self.fps = metrics.fps.labels(stream=stream)
        self._errors = {kind: metrics.errors.labels(stream=stream, kind=kind) for kind in ERROR_KINDS}

    def error(self, kind: str) -> None:
        self._errors[kind].inc()
