"""Prometheus metrics objects made from their specs, and the plumbing of multi-process Celery workers.

`create_metric` is the one place a `MetricSpec` becomes a prometheus_client object, for every service.

prometheus_client's multiprocess mode: every pool process writes its samples to files under
PROMETHEUS_MULTIPROC_DIR, which the worker command sets and empties before anything imports
prometheus_client; the main process serves the sum. prometheus_client is imported only inside
these functions: the common package stays light.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidfleet_common.metric_names import MetricSpec

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(folder: Path | None = None) -> Path:
    """Point prometheus_client at an empty folder (a fresh temporary one, removed at exit, by default).

    Call before prometheus_client is imported.
    """
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="vidfleet-metrics-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def create_metric(
    spec: MetricSpec, registry: Any, *, buckets: Sequence[float] | None = None, multiprocess_mode: str | None = None
) -> Any:
    """The prometheus_client object for `spec`: its type, exposition name, labels and help, on `registry`.

    `multiprocess_mode` applies to gauges (how pool processes' values combine), `buckets` to histograms.
    """
    from prometheus_client import Counter, Gauge, Histogram

    common: dict[str, Any] = {"labelnames": list(spec.labels), "registry": registry}
    if spec.type == "counter":
        return Counter(spec.client_name, spec.help, **common)
    if spec.type == "histogram":
        return Histogram(spec.name, spec.help, **common, **({"buckets": tuple(buckets)} if buckets else {}))
    return Gauge(spec.name, spec.help, **common, **({"multiprocess_mode": multiprocess_mode} if multiprocess_mode else {}))


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics from the main worker process, summing every process's files."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)


def process_exited(pid: int) -> None:
    """A pool process ended: its live gauges stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
