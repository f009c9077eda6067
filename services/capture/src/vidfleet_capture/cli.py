"""`vidfleet-capture worker`: a Celery worker on the `capture` queue, with its own /metrics.

The pool is threads by default: a capture spends its time in OpenCV and sockets, which release
the GIL, and one process holds every capture so that a worker shutdown can stop them all cleanly.
`--pool prefork` (passed through) isolates captures in processes instead; metrics are summed over
the pool processes either way.
"""

from __future__ import annotations

import logging
import sys

import click

from vidfleet_common.contracts import Queue
from vidfleet_common.errors import ConfigError
from vidfleet_common.settings import load_settings, masked


def _has_option(args: list[str], *names: str) -> bool:
    return any(arg == name or arg.startswith(f"{name}=") for arg in args for name in names)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """vidfleet capture: cameras and files into Redis frame streams."""


@main.command("worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=4, show_default=True, help="Streams this worker captures at once.")
@click.option("--loglevel", "-l", default="info", show_default=True)
@click.option("--queues", "-Q", default=Queue.CAPTURE.value, show_default=True, help="Queues to consume, comma-separated.")
@click.option("--metrics-port", type=int, default=None, help="Port of /metrics (default: VIDFLEET_METRICS_PORT, 9101).")
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address /metrics listens on.")
@click.pass_context
def worker(ctx: click.Context, concurrency: int, loglevel: str, queues: str, metrics_port: int | None, metrics_host: str) -> None:
    """Run a capture worker. Other Celery worker options (--hostname, --pool, ...) are passed through."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    # Before prometheus_client is imported anywhere: every pool process writes its samples here.
    from vidfleet_capture.metrics import CaptureMetrics
    from vidfleet_common.worker_metrics import prepare_multiprocess_dir, serve_metrics

    prepare_multiprocess_dir()
    metrics = CaptureMetrics()
    from vidfleet_capture.app import create_app

    from vidfleet_common.fleet import WORKER_FLAGS
    from vidfleet_common.redis_connection import REPORT, quiet_celery_reconnects

    app = create_app(settings, metrics=metrics)
    REPORT.configure("capture worker", metrics.redis_reconnects.inc)
    quiet_celery_reconnects()
    # Captures encode frames in parallel on their own threads; OpenCV's thread pool would only spin beside them.
    from vidfleet_capture.opencv import cv2

    cv2.setNumThreads(1)
    port = metrics_port or settings.metrics_port
    try:
        serve_metrics(port, metrics_host)
    except OSError as exc:
        click.echo(f"error: cannot serve /metrics on {metrics_host}:{port}: {exc.strerror}", err=True)
        sys.exit(2)
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    extra = list(ctx.args)
    pool = [] if _has_option(extra, "--pool", "-P") else ["--pool", "threads"]
    shown = masked(settings)
    logging.getLogger("vidfleet.capture.worker").info(
        "capture worker on %s, queues %s, concurrency %d, /metrics on %s:%d",
        shown["broker_url"], queues, concurrency, metrics_host, port,
    )
    app.worker_main(["worker", "--queues", queues, "--concurrency", str(concurrency), "--loglevel", loglevel, *WORKER_FLAGS, *pool, *extra])
