"""Prometheus metrics of a multi-process Celery worker (detector batch workers, capture workers).

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
from pathlib import Path

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
