"""The test Redis itself: started on a free port, killed and restarted with its data kept (AOF)."""

from pathlib import Path

import redis

from tests.servers import RedisServer


def test_redis_survives_a_kill_with_append_only_on(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("vidfleet:probe", "kept")
        server.restart()
        assert redis.Redis.from_url(server.url).get("vidfleet:probe") == b"kept"
    finally:
        server.stop()


def test_redis_with_a_password_refuses_anonymous_clients(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", password="s3cret").start()
    try:
        anonymous = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            anonymous.ping()
            raise AssertionError("ping without a password succeeded")
        except redis.AuthenticationError:
            pass
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()
