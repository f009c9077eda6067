"""`vidfleet-detector worker`: a Celery worker on the `detect` queue, with its own /metrics."""

from __future__ import annotations

import logging
import sys

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
    from vidfleet_common.worker_metrics import prepare_multiprocess_dir, serve_metrics
    from vidfleet_detector.fleet.metrics import WorkerMetrics

    prepare_multiprocess_dir()
    metrics = WorkerMetrics()
    from vidfleet_detector.fleet.app import create_app

    from vidfleet_common.fleet import WORKER_FLAGS
    from vidfleet_common.redis_connection import REPORT, quiet_celery_reconnects

    app = create_app(settings, metrics=metrics, preload_model=preload_model)
    REPORT.configure("detector worker", metrics.redis_reconnects.inc)
    quiet_celery_reconnects()
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
    app.worker_main(["worker", "--queues", queues, "--concurrency", str(concurrency), "--loglevel", loglevel, *WORKER_FLAGS, *ctx.args])


@main.command("live")
@click.option("--model", default="yolo11n.pt", show_default=True, help="Model for every stream (name or path).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--half", is_flag=True, help="FP16 on CUDA.")
@click.option("--imgsz", type=int, default=None, help="Inference size (default: the model's).")
@click.option("--conf", type=float, default=0.25, show_default=True, help="Lowest confidence any stream asks for.")
@click.option("--batch", type=int, default=8, show_default=True, help="Frames per model call, across streams.")
@click.option("--max-streams", type=int, default=32, show_default=True, help="Streams this detector may hold.")
@click.option("--lease-ttl", type=float, default=10.0, show_default=True, help="Seconds a dead detector keeps its streams.")
@click.option("--name", default=None, help="This detector's name in leases and logs (default: the hostname, the pod's name).")
@click.option("--metrics-port", type=int, default=None, help="Port of /metrics (default: VIDFLEET_METRICS_PORT, 9101).")
@click.option("--metrics-host", default="0.0.0.0", show_default=True)
@click.option("--loglevel", "-l", default="info", show_default=True)
def live(
    model: str, device: str, half: bool, imgsz: int | None, conf: float, batch: int, max_streams: int, lease_ttl: float,
    name: str | None, metrics_port: int | None, metrics_host: str, loglevel: str,
) -> None:
    """Track live streams: lease them, batch their frames through the model, append tracks."""
    import signal
    import socket
    import threading

    from vidfleet_common.contracts import RedisKeys
    from vidfleet_common.errors import ModelError
    from vidfleet_common.fleet import redis_client
    from vidfleet_common.heartbeats import new_incarnation
    from vidfleet_common.job_config import JobConfig
    from vidfleet_common.redis_connection import REPORT

    try:
        settings = load_settings()
        config = JobConfig.from_mapping({"model": model, "device": device, "half": half, "imgsz": imgsz, "conf": conf, "batch": batch})
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from prometheus_client import start_http_server

    from vidfleet_detector.live.detector import LiveDetector
    from vidfleet_detector.live.metrics import LiveMetrics
    from vidfleet_detector.model_runner import ModelRunner

    try:
        runner = ModelRunner(config)
    except ModelError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    import numpy as np

    runner.predict([np.zeros((480, 640, 3), np.uint8)] * batch)  # warm-up: the first call builds the predictor
    metrics = LiveMetrics()
    metrics.model_loaded(model, runner.device)
    REPORT.configure("live detector", metrics.redis_reconnects.inc)
    port = metrics_port or settings.metrics_port
    try:
        start_http_server(port, addr=metrics_host)
    except OSError as exc:
        click.echo(f"error: cannot serve /metrics on {metrics_host}:{port}: {exc.strerror}", err=True)
        sys.exit(2)
    # A restarted detector (same name, same pod) is a new holder: its predecessor's leases are never mistaken for its own.
    holder = f"{name or socket.gethostname()}/{new_incarnation()}"
    detector = LiveDetector(
        redis_client(settings), RedisKeys(settings.key_prefix), runner,
        holder=holder, lease_ttl_s=lease_ttl, max_streams=max_streams, batch=batch, metrics=metrics,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    from vidfleet_detector.live.webhook import WebhookSink

    sink = WebhookSink(
        detector.redis, detector.keys, holder, lambda: {name: st.spec for name, st in detector.streams.copy().items()}, metrics=metrics
    )
    threading.Thread(target=sink.run, args=(stop,), name="vidfleet-webhook", daemon=True).start()
    logging.getLogger("vidfleet.detector.live").info("live detector %s on %s, /metrics on %s:%d", holder, masked(settings)["broker_url"], metrics_host, port)
    detector.run(stop)
