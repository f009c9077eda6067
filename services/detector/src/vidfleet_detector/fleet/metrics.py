"""The detector worker's Prometheus metrics, summed over its Celery pool processes.

prometheus_client's multiprocess mode: every process writes its samples to files under
PROMETHEUS_MULTIPROC_DIR, which the worker command sets and empties before anything imports
prometheus_client; the main process serves the sum. Gauges count only live processes.
"""

from __future__ import annotations

from typing import Any

from vidfleet_common import metric_names as m
from vidfleet_common.results import VideoOutcome

INFERENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LOAD_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Error kinds: those that point at the input, and those that point at the worker (the VidfleetDetectorErrors alert).
INPUT_FAULTS = ("input", "config", "video", "unreadable", "empty")
WORKER_FAULTS = ("model", "internal", "request")


def device_memory_bytes(device: str) -> float:
    """What `vidfleet_device_memory_bytes` reports for `device` in this process."""
    if device.startswith("cuda"):
        import torch

        # Reserved, not allocated: what the caching allocator holds is what other processes cannot have.
        return float(torch.cuda.memory_reserved(device))
    import psutil  # installed with ultralytics

    return float(psutil.Process().memory_info().rss)


class WorkerMetrics:
    """The metric objects; create after `prepare_multiprocess_dir` in the worker (or plainly in tests)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = REGISTRY if registry is None else registry

        def counter(spec: m.MetricSpec) -> Any:
            return Counter(spec.client_name, spec.help, list(spec.labels), registry=registry)

        self.frames_processed = counter(m.FRAMES_PROCESSED)
        self.frames_decoded = counter(m.FRAMES_DECODED)
        self.detections = counter(m.DETECTIONS)
        self.video_seconds = counter(m.VIDEO_SECONDS)
        self.videos = counter(m.VIDEOS)
        self.errors = counter(m.ERRORS)
        self.inference_seconds = Histogram(m.INFERENCE_SECONDS.name, m.INFERENCE_SECONDS.help, buckets=INFERENCE_BUCKETS, registry=registry)
        self.batch_size = Histogram(m.BATCH_SIZE.name, m.BATCH_SIZE.help, buckets=BATCH_BUCKETS, registry=registry)
        self.model_load_seconds = Histogram(m.MODEL_LOAD_SECONDS.name, m.MODEL_LOAD_SECONDS.help, buckets=LOAD_BUCKETS, registry=registry)
        self.active_tracks = Gauge(m.ACTIVE_TRACKS.name, m.ACTIVE_TRACKS.help, multiprocess_mode="livesum", registry=registry)
        self.tasks_running = Gauge(m.TASKS_RUNNING.name, m.TASKS_RUNNING.help, multiprocess_mode="livesum", registry=registry)
        self.model_info = Gauge(
            m.MODEL_INFO.name, m.MODEL_INFO.help, list(m.MODEL_INFO.labels), multiprocess_mode="livemax", registry=registry
        )
        self.device_memory = Gauge(
            m.DEVICE_MEMORY.name, m.DEVICE_MEMORY.help, list(m.DEVICE_MEMORY.labels), multiprocess_mode="livesum", registry=registry
        )
        # Series that exist from the start: increase() and rate() miss a counter's first step from "absent"
        # to 1, and the alert rules watch these.
        for outcome in VideoOutcome:
            self.videos.labels(outcome=outcome.value)
        for kind in (*INPUT_FAULTS, *WORKER_FAULTS):
            self.errors.labels(kind=kind)

    def model_loaded(self, model: str, device: str) -> None:
        self.model_info.labels(model=model, device=device).set(1)
        self.device_memory.labels(device=device).set(device_memory_bytes(device))


class MetricsObserver:
    """The pipeline's hooks (vidfleet_detector.pipeline.PipelineObserver) feeding WorkerMetrics."""

    def __init__(self, metrics: WorkerMetrics, names: dict[int, str], device: str | None = None) -> None:
        self.metrics = metrics
        self.names = names
        self.device = device
        self._tracks = 0

    def on_batch(self, frames: int, inference_seconds: float, detections: list[Any]) -> None:
        self.metrics.frames_processed.inc(frames)
        self.metrics.inference_seconds.observe(inference_seconds)
        self.metrics.batch_size.observe(frames)
        if self.device is not None:
            self.metrics.device_memory.labels(device=self.device).set(device_memory_bytes(self.device))
        counts: dict[str, int] = {}
        for dets in detections:
            for class_id in dets.class_ids.tolist():
                name = self.names.get(int(class_id), str(int(class_id)))
                counts[name] = counts.get(name, 0) + 1
        for name, count in counts.items():
            self.metrics.detections.labels(class_name=name).inc(count)

    def on_tracks(self, active_tracks: int) -> None:
        self.metrics.active_tracks.inc(active_tracks - self._tracks)
        self._tracks = active_tracks

    def close(self) -> None:
        """The video is done: its tracks no longer count."""
        self.on_tracks(0)
