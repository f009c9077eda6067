"""The detector worker's Prometheus metrics, summed over its Celery pool processes.

prometheus_client's multiprocess mode: every process writes its samples to files under
PROMETHEUS_MULTIPROC_DIR, which the worker command sets and empties before anything imports
prometheus_client; the main process serves the sum. Gauges count only live processes.
"""

from __future__ import annotations

from typing import Any

from vidfleet_common import metric_names as m
from vidfleet_common.results import VideoOutcome
from vidfleet_common.worker_metrics import create_metric
from vidfleet_detector.analytics.metrics import BatchCountingMetrics

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
        from prometheus_client import REGISTRY

        registry = REGISTRY if registry is None else registry

        def metric(spec: m.MetricSpec, **options: Any) -> Any:
            return create_metric(spec, registry, **options)

        self.frames_processed = metric(m.FRAMES_PROCESSED)
        self.frames_decoded = metric(m.FRAMES_DECODED)
        self.detections = metric(m.DETECTIONS)
        self.video_seconds = metric(m.VIDEO_SECONDS)
        self.videos = metric(m.VIDEOS)
        self.errors = metric(m.ERRORS)
        self.inference_seconds = metric(m.INFERENCE_SECONDS, buckets=INFERENCE_BUCKETS)
        self.batch_size = metric(m.BATCH_SIZE, buckets=BATCH_BUCKETS)
        self.model_load_seconds = metric(m.MODEL_LOAD_SECONDS, buckets=LOAD_BUCKETS)
        self.active_tracks = metric(m.ACTIVE_TRACKS, multiprocess_mode="livesum")
        self.tasks_running = metric(m.TASKS_RUNNING, multiprocess_mode="livesum")
        self.model_info = metric(m.MODEL_INFO, multiprocess_mode="livemax")
        self.device_memory = metric(m.DEVICE_MEMORY, multiprocess_mode="livesum")
        self.redis_reconnects = metric(m.REDIS_RECONNECTS)
        self.counting = BatchCountingMetrics(registry)
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
