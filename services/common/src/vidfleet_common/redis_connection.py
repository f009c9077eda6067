"""A Redis outage, as a process reports it: one warning line when the connection is lost, one line
and a counted reconnect when it is back — not a traceback per retry that reads like a crash.

Three sources feed the one report of a process: vidfleet's own redis-py clients (their connection
class reports failed and successful connects), Celery's consumer (whose reconnect log lines are
folded into the report), and the service loops that catch a Redis error. Real errors, anything
that is not a lost connection, keep their own log lines and tracebacks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from vidfleet_common.settings import scrub_url

log = logging.getLogger("vidfleet.redis")


class ConnectionReport:
    """Per process: is Redis reachable, since when not, and what to call when it is back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.service = "vidfleet"
        self.down_since: float | None = None
        self.reconnects = 0
        self._on_reconnect: Callable[[], None] | None = None

    def configure(self, service: str, on_reconnect: Callable[[], None] | None = None) -> None:
        self.service = service
        self._on_reconnect = on_reconnect

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def lost(self, error: BaseException | str) -> None:
        with self._lock:
            if self.down_since is not None:
                return
            self.down_since = time.monotonic()
        log.warning("%s lost its connection to Redis (%s); retrying until it is back", self.service, _reason(error))

    def restored(self) -> None:
        with self._lock:
            if self.down_since is None:
                return
            seconds, self.down_since = time.monotonic() - self.down_since, None
            self.reconnects += 1
        log.info("%s reconnected to Redis after %.1fs", self.service, seconds)
        if self._on_reconnect is not None:
            try:
                self._on_reconnect()
            except Exception:  # noqa: BLE001 - a metric must not break a reconnect
                log.debug("reconnect callback failed", exc_info=True)


REPORT = ConnectionReport()


def is_connection_error(exc: BaseException) -> bool:
    """Redis unreachable (refused, reset, timed out, still loading its data), as redis-py or kombu raise it."""
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

    if isinstance(exc, (ConnectionError, TimeoutError, BusyLoadingError, ConnectionRefusedError, ConnectionResetError)):
        return True
    try:
        from kombu.exceptions import OperationalError
    except ImportError:  # kombu is not in every image
        return False
    return isinstance(exc, OperationalError)


def report_failure(exc: BaseException, logger: logging.Logger, what: str) -> None:
    """A service loop's Redis error: a lost connection goes into the process's one report, anything else is logged."""
    if is_connection_error(exc):
        REPORT.lost(exc)
    else:
        logger.warning("%s: %s: %s", what, type(exc).__name__, scrub_url(str(exc)))


@cache
def connection_classes() -> tuple[type, type]:
    """redis-py connection classes (plain, TLS) whose connects feed REPORT."""
    import redis

    class _Reporting:
        def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
            if getattr(self, "_sock", None) is not None:
                return super().connect_check_health(*args, **kwargs)  # type: ignore[misc]  # connected already
            try:
                super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                REPORT.lost(exc)
                raise
            REPORT.restored()

    plain = type("ReportingConnection", (_Reporting, redis.Connection), {})
    tls = type("ReportingSSLConnection", (_Reporting, redis.SSLConnection), {})
    return plain, tls


class CeleryReconnectFilter(logging.Filter):
    """Folds Celery's consumer reconnect lines (a warning and then an error per retry) into REPORT, and drops
    Celery's multi-line notice about `worker_cancel_long_running_tasks_on_connection_loss`, which vidfleet
    leaves off on purpose (a video in hand keeps running through a Redis restart; its message stays
    unacknowledged in Redis until it ends). Celery's log setup re-enables that warning, hence a log filter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "py.warnings":
            return "worker_cancel_long_running_tasks_on_connection_loss" not in record.getMessage()
        message = str(record.msg)
        args = record.args if isinstance(record.args, tuple) else ()
        if message == "%s (%r)" and args and str(args[0]).startswith("consumer: Connection to broker lost"):
            REPORT.lost(args[1] if len(args) > 1 else "connection lost")
            return False
        if message.startswith("consumer: Cannot connect to"):
            REPORT.lost(args[1] if len(args) > 1 else "cannot connect")
            return False
        if message.startswith("Connected to") and REPORT.down:
            REPORT.restored()
            return False
        return True


def quiet_celery_reconnects() -> None:
    """Install CeleryReconnectFilter on Celery's consumer loggers and on the warnings logger."""
    reconnects = CeleryReconnectFilter()
    for name in ("celery.worker.consumer.consumer", "celery.worker.consumer.connection", "py.warnings"):
        logging.getLogger(name).addFilter(reconnects)


def _reason(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    else:
        text = str(error)
    return scrub_url(text.strip().splitlines()[0] if text.strip() else text).rstrip(".")
