"""A Redis outage reported once per process: a real redis-server killed and started again under a client."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.servers import RedisServer
from vidfleet_common.fleet import redis_client
from vidfleet_common.redis_connection import REPORT, CeleryReconnectFilter, ConnectionReport, connection_classes, is_connection_error
from vidfleet_common.settings import Settings


@pytest.fixture
def report() -> ConnectionReport:
    counted: list[int] = []
    REPORT.configure("test process", lambda: counted.append(1))
    REPORT.down_since = None
    REPORT.counted = counted  # type: ignore[attr-defined]
    yield REPORT
    REPORT.configure("vidfleet")
    REPORT.down_since = None


def test_an_outage_is_one_warning_and_one_counted_reconnect(report: ConnectionReport, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(tmp_path / "redis").start()
    # The connection class redis_client() uses, without its minute of retries: each call fails at once.
    assert issubclass(redis_client(Settings(CELERY_BROKER_URL=server.url)).connection_pool.connection_class, connection_classes()[0])
    pool = redis.ConnectionPool(port=server.port, connection_class=connection_classes()[0], retry=Retry(NoBackoff(), 0), socket_connect_timeout=1)
    client = redis.Redis(connection_pool=pool)
    try:
        assert client.ping()
        server.kill()
        with caplog.at_level(logging.INFO, logger="vidfleet.redis"):
            for _ in range(3):  # three callers fail during the outage
                with pytest.raises(redis.exceptions.ConnectionError):
                    client.ping()
            server.start()
            assert client.ping()
        lost = [r for r in caplog.records if "lost its connection to Redis" in r.getMessage()]
        back = [r for r in caplog.records if "reconnected to Redis" in r.getMessage()]
        assert len(lost) == 1 and lost[0].levelno == logging.WARNING and "test process" in lost[0].getMessage()
        assert len(back) == 1 and back[0].levelno == logging.INFO
        assert report.counted == [1] and not report.down  # type: ignore[attr-defined]
        assert "Traceback" not in caplog.text
    finally:
        server.kill()


def record(msg: str, *args: object, name: str = "celery.worker.consumer.consumer") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_celery_reconnect_lines_are_folded_into_the_report(report: ConnectionReport) -> None:
    folding = CeleryReconnectFilter()
    error = redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    assert not folding.filter(record("%s (%r)", "consumer: Connection to broker lost. Trying to re-establish...", error))
    assert report.down
    assert not folding.filter(record("consumer: Cannot connect to %s: %s.\n%s\n", "redis://:**@h:6379/0", error, "Trying again in 2.00 seconds..."))
    assert not folding.filter(record("Connected to %s", "redis://:**@h:6379/0", name="celery.worker.consumer.connection"))
    assert not report.down and report.counted == [1]  # type: ignore[attr-defined]
    assert folding.filter(record("Connected to %s", "redis://:**@h:6379/0", name="celery.worker.consumer.connection")), "a first connect stays"
    assert folding.filter(record("Task %s received", "x")), "other lines pass"
    notice = record("%s", "In Celery 5.1 ... worker_cancel_long_running_tasks_on_connection_loss setting ...", name="py.warnings")
    assert not folding.filter(notice)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (redis.exceptions.ConnectionError("refused"), True),
        (redis.exceptions.TimeoutError("slow"), True),
        (redis.exceptions.BusyLoadingError("loading"), True),
        (redis.exceptions.ResponseError("WRONGTYPE"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_a_lost_connection_counts_as_an_outage(exc: BaseException, expected: bool) -> None:
    assert is_connection_error(exc) is expected
