"""How every fleet process talks to Redis and Celery: one Celery configuration, one resilient Redis client,
and the message a `detect` task receives. Celery and redis-py are imported lazily: `vidfleet process`
never needs them."""

from __future__ import annotations

import ssl
from typing import Any

from pydantic import BaseModel, ConfigDict

from vidfleet_common.chunks import Chunk
from vidfleet_common.contracts import Queue, TaskName
from vidfleet_common.jobs import JobVideo
from vidfleet_common.settings import Settings

# A Redis restart (or failover) takes seconds: commands retry with backoff for about this long.
REDIS_RETRY_SECONDS = 60.0


class DetectRequest(BaseModel):
    """The only argument of the `detect` task (JSON): which video of which job, with what config, to where."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    video: JobVideo
    config: dict[str, Any]
    out_dir: str
    epoch: str | None = None  # the fleet epoch the job was dispatched in (vidfleet_common.epoch)
    chunk: Chunk | None = None  # one chunk of a split video (vidfleet_common.chunks); the stitch task gets None


def detect_task_id(job_id: str, video_name: str) -> str:
    """Deterministic task ids: the coordinator can revoke a job's queued tasks without storing them."""
    return f"{job_id}:{video_name}"


# Celery worker features vidfleet does not use and that only add reconnect noise after a Redis restart
# (Gossip's restart raises AttributeError tracebacks): worker liveness comes from vidfleet's own
# heartbeats (vidfleet_common.heartbeats), and a task checks its job's cancel flag itself.
WORKER_FLAGS = ("--without-gossip", "--without-mingle")


def _tls_options(url: str, settings: Settings) -> dict[str, Any] | None:
    if not url.startswith("rediss://") or "ssl_cert_reqs=" in url:
        return None
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if settings.redis_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.redis_ca_file)
    return options


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for every vidfleet app: JSON only, late acks, prefetch 1, no result backend needed."""
    broker = settings.broker_url.get_secret_value()
    config: dict[str, Any] = {
        "broker_url": broker,
        # Results travel through the job record in Redis, not Celery's backend.
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": Queue.DETECT.value,
        "task_routes": {
            TaskName.DETECT_VIDEO.value: {"queue": Queue.DETECT.value},
            # Stitching needs the chunks' files and the model's class names: a detector's job, after its chunks.
            TaskName.STITCH_VIDEO.value: {"queue": Queue.DETECT.value},
            TaskName.RENDER_CHUNK.value: {"queue": Queue.DETECT.value},
            TaskName.JOIN_VIDEO.value: {"queue": Queue.DETECT.value},
            TaskName.CAPTURE_STREAM.value: {"queue": Queue.CAPTURE.value},
        },
        "task_create_missing_queues": True,
        "broker_transport_options": {
            # Longer than the longest video: an unacknowledged task is redelivered only after this.
            "visibility_timeout": settings.visibility_timeout,
            # Running workers sweep for messages whose worker died (unacked past the visibility timeout);
            # kombu's default sweep runs every 100 s, scan each time, a small fraction of the timeout.
            "unacked_restore_interval": max(1, min(60, settings.visibility_timeout // 10)),
            "unacked_restore_throttle": 1,
            "socket_keepalive": True,
            "retry_on_timeout": True,
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,  # a Redis restart must never end a worker
        "broker_heartbeat": 0,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        # A video in hand keeps running through a Redis restart: its message stays unacknowledged in Redis
        # (append-only file) and is acknowledged once the video ends. True would restart every running video.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "timezone": "UTC",
        "enable_utc": True,
    }
    tls = _tls_options(broker, settings)
    if tls:
        config["broker_use_ssl"] = tls
    return config


def redis_client(settings: Settings) -> Any:
    """A redis-py client on the broker's Redis that rides out a restart: commands retry with backoff, and
    the process reports the outage once (vidfleet_common.redis_connection)."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
    from redis.retry import Retry

    from vidfleet_common.redis_connection import connection_classes

    retries = int(REDIS_RETRY_SECONDS / 1.0) + 8  # backoff caps at 1 s a try
    kwargs: dict[str, Any] = {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        "retry_on_error": [ConnectionError, TimeoutError, BusyLoadingError],
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
        "health_check_interval": 30,
        "decode_responses": False,
    }
    url = settings.broker_url.get_secret_value()
    tls = _tls_options(url, settings)
    if tls:
        kwargs.update(tls)
    plain, secure = connection_classes()
    kwargs["connection_class"] = secure if url.startswith("rediss://") else plain
    return redis.Redis.from_url(url, **kwargs)
