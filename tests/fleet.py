"""A real local fleet for tests: redis-server, the coordinator and detector workers as processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.servers import RedisServer, free_port, wait_for

BIN = Path(sys.executable).parent
TOKEN = "test-token-5f2c"


def fleet_env(redis: RedisServer, *, input_root: Path, output_root: Path | str, visibility_timeout: int = 3600, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDFLEET_", "CELERY_", "AWS_"))}
    env.update(
        CELERY_BROKER_URL=redis.url,
        CELERY_RESULT_BACKEND=redis.url,
        VIDFLEET_INPUT_ROOTS=str(input_root),
        VIDFLEET_OUTPUT_ROOT=str(output_root),
        VIDFLEET_API_TOKEN=TOKEN,
        VIDFLEET_VISIBILITY_TIMEOUT=str(visibility_timeout),
        VIDFLEET_WORKER_LOST_SECONDS="6",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Process:
    """A service process in its own session (so a SIGKILL can take its whole process group)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the process and its children: a pod that dies, no warm shutdown."""
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> None:
        if self.alive:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Coordinator(Process):
    port: int = 0

    @classmethod
    def create(cls, env: dict[str, str], folder: Path) -> Coordinator:
        port = free_port()
        args = [str(BIN / "vidfleet-coordinator"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        return cls("coordinator", args, env, folder / "coordinator.log", port=port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Coordinator:
        super().start()
        wait_for(lambda: self._livez(), timeout=30, what=f"coordinator on {self.url}\n{self.output()[-2000:]}")
        return self

    def _livez(self) -> bool:
        if not self.alive:
            raise RuntimeError(f"coordinator exited:\n{self.output()[-3000:]}")
        return httpx.get(f"{self.url}/livez", timeout=2).status_code == 200

    def api(self, method: str, path: str, *, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.api("GET", f"/jobs/{job_id}")
        response.raise_for_status()
        return response.json()

    def wait_finished(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        return wait_for(
            lambda: (job := self.job(job_id))["state"] in {"succeeded", "partial", "failed", "cancelled"} and job,
            timeout=timeout, what=f"job {job_id} to finish", interval=0.2,
        )


@dataclass
class MetricsProcess(Process):
    """A worker process that serves /metrics on its own port."""

    metrics_port: int = 0

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text


@dataclass
class Worker(MetricsProcess):
    hostname: str = ""

    @classmethod
    def create(cls, env: dict[str, str], folder: Path, name: str, *, concurrency: int = 1) -> Worker:
        port = free_port()
        hostname = f"{name}@test"
        args = [
            str(BIN / "vidfleet-detector"), "worker", "--concurrency", str(concurrency), "--loglevel", "info",
            "--hostname", hostname, "--metrics-port", str(port), "--pool", "prefork",
        ]
        return cls(name, args, env, folder / f"{name}.log", metrics_port=port, hostname=hostname)

    def wait_ready(self, coordinator: Coordinator, timeout: float = 90) -> None:
        def ready() -> bool:
            if not self.alive:
                raise RuntimeError(f"worker {self.name} exited:\n{self.output()[-3000:]}")
            health = coordinator.api("GET", "/health").json()
            return self.hostname in health.get("queues", {}).get("detect", {}).get("workers", [])

        wait_for(ready, timeout=timeout, what=f"worker {self.hostname} to answer ping\n{self.output()[-2000:]}", interval=0.5)


@dataclass
class CaptureWorker(MetricsProcess):
    hostname: str = ""

    @classmethod
    def create(cls, env: dict[str, str], folder: Path, name: str, *, concurrency: int = 2) -> CaptureWorker:
        port = free_port()
        hostname = f"{name}@test"
        args = [
            str(BIN / "vidfleet-capture"), "worker", "--concurrency", str(concurrency), "--loglevel", "info",
            "--hostname", hostname, "--metrics-port", str(port),
        ]
        return cls(name, args, env, folder / f"{name}.log", metrics_port=port, hostname=hostname)


@dataclass
class LiveDetector(MetricsProcess):

    @classmethod
    def create(cls, env: dict[str, str], folder: Path, name: str, *, model: str, lease_ttl: float = 4.0, batch: int = 4) -> LiveDetector:
        port = free_port()
        args = [
            str(BIN / "vidfleet-detector"), "live", "--model", model, "--device", "cpu", "--batch", str(batch),
            "--lease-ttl", str(lease_ttl), "--metrics-port", str(port), "--name", name,
        ]
        return cls(name, args, env, folder / f"{name}.log", metrics_port=port)


@dataclass
class Fleet:
    folder: Path
    input_root: Path
    output_root: Path | str
    redis: RedisServer
    coordinator: Coordinator
    workers: list[Process] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        folder: Path,
        input_root: Path,
        *,
        workers: int = 1,
        visibility_timeout: int = 3600,
        redis_password: str | None = None,
        redis_appendonly: bool = True,
        output_root: Path | str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Fleet:
        redis = RedisServer(folder / "redis", password=redis_password, appendonly=redis_appendonly).start()
        output_root = output_root or folder / "results"
        env = fleet_env(redis, input_root=input_root, output_root=output_root, visibility_timeout=visibility_timeout, **(extra_env or {}))
        coordinator = Coordinator.create(env, folder).start()
        fleet = cls(folder, input_root, output_root, redis, coordinator, env=env)
        for i in range(workers):
            fleet.add_worker(f"w{i + 1}")
        for worker in fleet.workers:
            worker.wait_ready(coordinator)
        return fleet

    def add_worker(self, name: str, **kwargs: Any) -> Worker:
        worker = Worker.create(self.env, self.folder, name, **kwargs).start()
        self.workers.append(worker)
        return worker

    def add_capture(self, name: str, **kwargs: Any) -> CaptureWorker:
        worker = CaptureWorker.create(self.env, self.folder, name, **kwargs).start()
        self.workers.append(worker)
        return worker

    def add_live_detector(self, name: str, **kwargs: Any) -> LiveDetector:
        detector = LiveDetector.create(self.env, self.folder, name, **kwargs).start()
        self.workers.append(detector)
        return detector

    def submit(self, inputs: list[str], config: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.coordinator.api("POST", "/jobs", json={"inputs": inputs, "config": config or {}})
        assert response.status_code == 201, response.text
        return response.json()

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.coordinator.kill()
        self.redis.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.output()[-4000:]}" for p in [self.coordinator, *self.workers])
