"""The detector's device and model metrics, and the series that exist before their first event."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from vidfleet_common import metric_names as m
from vidfleet_common.results import VideoOutcome
from vidfleet_detector.fleet.metrics import INPUT_FAULTS, WORKER_FAULTS, MetricsObserver, WorkerMetrics, device_memory_bytes
from vidfleet_detector.live.metrics import LiveMetrics


def test_cpu_device_memory_is_the_resident_memory_of_the_process() -> None:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    import resource

    page = resource.getpagesize()
    assert abs(device_memory_bytes("cpu") - resident_pages * page) < 64 * 2**20


def test_a_loaded_model_is_announced_with_its_device_and_memory() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    metrics.model_loaded("yolo11n.pt", "cpu")
    assert registry.get_sample_value(m.MODEL_INFO.name, {"model": "yolo11n.pt", "device": "cpu"}) == 1
    assert registry.get_sample_value(m.DEVICE_MEMORY.name, {"device": "cpu"}) > 10 * 2**20

    metrics.device_memory.labels(device="cpu").set(0)
    MetricsObserver(metrics, {}, "cpu").on_batch(1, 0.01, [])
    assert registry.get_sample_value(m.DEVICE_MEMORY.name, {"device": "cpu"}) > 0, "a batch refreshes the figure"


def test_outcome_and_worker_fault_series_exist_at_zero_before_any_video() -> None:
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    for outcome in VideoOutcome:
        assert registry.get_sample_value(m.VIDEOS.name, {"outcome": outcome.value}) == 0
    for kind in (*INPUT_FAULTS, *WORKER_FAULTS):
        assert registry.get_sample_value(m.ERRORS.name, {"kind": kind}) == 0


def test_a_live_stream_has_its_series_from_the_lease_on() -> None:
    registry = CollectorRegistry()
    metrics = LiveMetrics(registry)
    metrics.model_loaded("vidfleet-shapes-n.pt", "cpu")
    metrics.stream_adopted("door")
    assert registry.get_sample_value(m.LIVE_SKIPPED.name, {"stream": "door"}) == 0
    assert registry.get_sample_value(m.LIVE_FRAMES.name, {"stream": "door"}) == 0
    assert registry.get_sample_value(f"{m.LIVE_LATENCY.name}_count", {"stream": "door"}) == 0
    assert registry.get_sample_value(m.MODEL_INFO.name, {"model": "vidfleet-shapes-n.pt", "device": "cpu"}) == 1
