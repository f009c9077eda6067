"""`vidfleet-detector worker`: a Celery worker on the `detect` queue, with its own /metrics."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import click

from vidfleet_common.contracts import Queue
from vidfleet_common.errors import ConfigError
from vidfleet_common.settings import load_settings, masked


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """vidfleet detector: batch workers for the fleet."""


@main.command("worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--concurrency", "-c", type=int, default=1, show_default=True, help="Pool processes (one model each; 1 per GPU).")
@click.option("--loglevel", "-l", default="info", show_default=True)
@click.option("--queues", "-Q", default=Queue.DETECT.value, show_default=True, help="Queues to consume, comma-separated.")
@click.option("--metrics-port", type=int, default=None, help="Port of /metrics (default: VIDFLEET_METRICS_PORT, 9101).")
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address /metrics listens on.")
@click.option("--preload-model", default=None, help="Load this model in every pool process at start, before the first task.")
@click.pass_context
def worker(
    ctx: click.Context, concurrency: int, loglevel: str, queues: str, metrics_port: int | None, metrics_host: str, preload_model: str | None
) -> None:
    """Run a detector worker. Other Celery worker options (--hostname, --pool, ...) are passed through."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    # Before prometheus_client is imported anywhere: every pool process writes its samples here.
    from vidfleet_detector.fleet.metrics import WorkerMetrics, prepare_multiprocess_dir, serve_metrics

    prepare_multiprocess_dir(Path(tempfile.mkdtemp(prefix="vidfleet-metrics-")))
    metrics = WorkerMetrics()
    from vidfleet_detector.fleet.app import create_app

    app = create_app(settings, metrics=metrics, preload_model=preload_model)
    port = metrics_port or settings.metrics_port
    try:
        serve_metrics(port, metrics_host)
    except OSError as exc:
        click.echo(f"error: cannot serve /metrics on {metrics_host}:{port}: {exc.strerror}", err=True)
        sys.exit(2)
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    shown = masked(settings)
    logging.getLogger("vidfleet.detector.worker").info(
        "worker on %s, queues %s, concurrency %d, /metrics on %s:%d, visibility timeout %ds",
        shown["broker_url"], queues, concurrency, metrics_host, port, settings.visibility_timeout,
    )
    app.worker_main(["worker", "--queues", queues, "--concurrency", str(concurrency), "--loglevel", loglevel, *ctx.args])
