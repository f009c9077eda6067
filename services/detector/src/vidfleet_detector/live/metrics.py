"""The live detector's Prometheus metrics (one process, its own registry)."""

from __future__ import annotations

from typing import Any

from vidfleet_common import metric_names as m
from vidfleet_detector.fleet.metrics import BATCH_BUCKETS, INFERENCE_BUCKETS, device_memory_bytes

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class LiveMetrics:
    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = REGISTRY if registry is None else registry
        self.registry = registry
        self.streams = Gauge(m.LIVE_STREAMS.name, m.LIVE_STREAMS.help, registry=registry)
        self.frames = Counter(m.LIVE_FRAMES.client_name, m.LIVE_FRAMES.help, list(m.LIVE_FRAMES.labels), registry=registry)
        self.skipped = Counter(m.LIVE_SKIPPED.client_name, m.LIVE_SKIPPED.help, list(m.LIVE_SKIPPED.labels), registry=registry)
        self.latency = Histogram(
            m.LIVE_LATENCY.name, m.LIVE_LATENCY.help, list(m.LIVE_LATENCY.labels), buckets=LATENCY_BUCKETS, registry=registry
        )
        self.frames_processed = Counter(m.FRAMES_PROCESSED.client_name, m.FRAMES_PROCESSED.help, registry=registry)
        self.inference_seconds = Histogram(m.INFERENCE_SECONDS.name, m.INFERENCE_SECONDS.help, buckets=INFERENCE_BUCKETS, registry=registry)
        self.batch_size = Histogram(m.BATCH_SIZE.name, m.BATCH_SIZE.help, buckets=BATCH_BUCKETS, registry=registry)
        self.model_info = Gauge(m.MODEL_INFO.name, m.MODEL_INFO.help, list(m.MODEL_INFO.labels), registry=registry)
        self.device_memory = Gauge(m.DEVICE_MEMORY.name, m.DEVICE_MEMORY.help, list(m.DEVICE_MEMORY.labels), registry=registry)
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
