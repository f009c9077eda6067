"""The live detector's Prometheus metrics (one process, its own registry)."""

from __future__ import annotations

from typing import Any

from vidfleet_common import metric_names as m
from vidfleet_common.worker_metrics import create_metric
from vidfleet_detector.analytics.metrics import CountingMetrics
from vidfleet_detector.fleet.metrics import BATCH_BUCKETS, INFERENCE_BUCKETS, device_memory_bytes

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class LiveMetrics:
    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY

        registry = REGISTRY if registry is None else registry
        self.registry = registry
        self.streams = create_metric(m.LIVE_STREAMS, registry)
        self.frames = create_metric(m.LIVE_FRAMES, registry)
        self.skipped = create_metric(m.LIVE_SKIPPED, registry)
        self.latency = create_metric(m.LIVE_LATENCY, registry, buckets=LATENCY_BUCKETS)
        self.frames_processed = create_metric(m.FRAMES_PROCESSED, registry)
        self.inference_seconds = create_metric(m.INFERENCE_SECONDS, registry, buckets=INFERENCE_BUCKETS)
        self.batch_size = create_metric(m.BATCH_SIZE, registry, buckets=BATCH_BUCKETS)
        self.model_info = create_metric(m.MODEL_INFO, registry)
        self.device_memory = create_metric(m.DEVICE_MEMORY, registry)
        self.redis_reconnects = create_metric(m.REDIS_RECONNECTS, registry)
        self.counting = CountingMetrics(registry)
        self.webhook_requests = create_metric(m.WEBHOOK_REQUESTS, registry)
        self.webhook_events = create_metric(m.WEBHOOK_EVENTS, registry)
        self.device: str | None = None

    def model_loaded(self, model: str, device: str) -> None:
        self.device = device
        self.model_info.labels(model=model, device=device).set(1)
        self.device_memory.labels(device=device).set(device_memory_bytes(device))

    def stream_adopted(self, stream: str) -> None:
        """A stream's series exist from its lease on (at 0), so rate() counts its first frames too."""
        self.frames.labels(stream=stream)
        self.skipped.labels(stream=stream)
        self.latency.labels(stream=stream)

    def observe_batch(self, frames: int, seconds: float) -> None:
        self.frames_processed.inc(frames)
        self.inference_seconds.observe(seconds)
        self.batch_size.observe(frames)
        if self.device is not None:
            self.device_memory.labels(device=self.device).set(device_memory_bytes(self.device))
