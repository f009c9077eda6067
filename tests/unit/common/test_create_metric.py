"""Every MetricSpec becomes the prometheus_client object of its type, under its exposition name."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from vidfleet_common import metric_names as m
from vidfleet_common.worker_metrics import create_metric


@pytest.mark.parametrize("spec", m.ALL, ids=lambda spec: spec.name)
def test_every_spec_is_exposed_with_its_name_type_labels_and_help(spec: m.MetricSpec) -> None:
    registry = CollectorRegistry()
    metric = create_metric(spec, registry)
    if spec.labels:
        metric = metric.labels(**{label: "x" for label in spec.labels})
    {"counter": lambda: metric.inc(), "gauge": lambda: metric.set(1), "histogram": lambda: metric.observe(0.1)}[spec.type]()

    text = generate_latest(registry).decode()
    assert f"# TYPE {spec.name} {spec.type}" in text
    assert f"# HELP {spec.name} {spec.help}" in text
    sample = spec.name + ("_count" if spec.type == "histogram" else "")
    labels = ",".join(f'{label}="x"' for label in sorted(spec.labels))  # exposition sorts labels
    assert (f"{sample}{{{labels}}} 1.0" if labels else f"{sample} 1.0") in text


def test_histogram_buckets_and_gauge_mode_are_passed_on() -> None:
    registry = CollectorRegistry()
    create_metric(m.BATCH_SIZE, registry, buckets=(1, 3)).observe(2)
    text = generate_latest(registry).decode()
    assert 'vidfleet_batch_size_bucket{le="3.0"} 1.0' in text and 'le="1.0"} 0.0' in text
    gauge = create_metric(m.TASKS_RUNNING, CollectorRegistry(), multiprocess_mode="livesum")
    assert gauge._multiprocess_mode == "livesum"
