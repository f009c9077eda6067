"""A real `vidfleet-capture worker` process on a real redis-server, fed tasks by name as the coordinator sends them."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.fleet import BIN, Process, fleet_env
from tests.servers import RedisServer, free_port, wait_for
from vidfleet_common import metric_names as m
from vidfleet_common.contracts import Queue, RedisKeys, TaskName
from vidfleet_common.fleet import celery_config
from vidfleet_common.settings import Settings
from vidfleet_common.streams import FrameMessage, StreamSpec

KEYS = RedisKeys()


@dataclass
class CaptureFleet:
    redis: RedisServer
    worker: Process
    metrics_port: int
    client: Any
    app: Any
    videos: Path

    def send(self, **kwargs: Any) -> None:
        self.app.send_task(TaskName.CAPTURE_STREAM.value, kwargs=kwargs, queue=Queue.CAPTURE.value)

    def status(self, name: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.client.hgetall(KEYS.capture_status(name)).items()}

    def frames(self, name: str) -> list[FrameMessage]:
        return [FrameMessage.from_fields(f) for _, f in self.client.xrange(KEYS.frames(name))]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples
        }

    def state(self, name: str, wanted: str, timeout: float = 20) -> dict[str, str]:
        def reached() -> dict[str, str] | None:
            if not self.worker.alive:
                raise RuntimeError(f"capture worker exited:\n{self.worker.output()[-3000:]}")
            current = self.status(name)
            return current if current.get("state") == wanted else None

        return wait_for(reached, timeout=timeout, what=f"stream {name} {wanted}\n{self.worker.output()[-2000:]}", interval=0.1)


@pytest.fixture(scope="module")
def capture_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaptureFleet]:
    from vidfleet_detector.synthetic import generate_video

    folder = tmp_path_factory.mktemp("capture-fleet")
    videos = folder / "videos"
    generate_video(videos / "street.mp4", seed=11, frames=30, width=320, height=240, fps=15.0, objects=2)
    server = RedisServer(folder / "redis", appendonly=False).start()
    env = fleet_env(server, input_root=videos, output_root=folder / "results")
    port = free_port()
    args = [str(BIN / "vidfleet-capture"), "worker", "--concurrency", "3", "--loglevel", "info", "--hostname", "cap1@test", "--metrics-port", str(port)]
    worker = Process("capture", args, env, folder / "capture.log").start()
    from celery import Celery

    app = Celery("test-sender")
    app.conf.update(celery_config(Settings(CELERY_BROKER_URL=server.url)))
    fleet = CaptureFleet(server, worker, port, redis.Redis.from_url(server.url), app, videos)
    try:
        yield fleet
    finally:
        worker.kill()
        server.kill()


def test_a_stream_is_captured_measured_and_stopped(capture_fleet: CaptureFleet) -> None:
    fleet = capture_fleet
    spec = StreamSpec(name="street", source=str(fleet.videos / "street.mp4"), fps=10, loop=True)
    fleet.send(infile=spec.source, output=KEYS.frames("street"), stream=spec.model_dump(mode="json"))

    running = fleet.state("street", "running")
    assert running["worker"].startswith("cap1@test/")
    wait_for(lambda: fleet.client.xlen(KEYS.frames("street")) >= 12, timeout=10, what="12 frames")
    got = fleet.frames("street")
    assert [f.seq for f in got] == list(range(len(got)))
    assert (got[-1].width, got[-1].height, got[-1].codec) == (320, 240, "jpg")

    def measured() -> dict | None:
        samples = fleet.metrics()
        appended = samples.get((m.CAPTURE_FRAMES.name, (("stage", "appended"), ("stream", "street"))), 0)
        return samples if appended >= 12 else None

    samples = wait_for(measured, timeout=10, what="appended frames in /metrics")
    assert samples[(m.CAPTURE_FRAMES.name, (("stage", "read"), ("stream", "street")))] >= 12
    assert samples[(m.CAPTURE_FPS.name, (("stream", "street"),))] == pytest.approx(10, rel=0.3)

    fleet.client.set(KEYS.capture_stop("street"), "1", ex=120)  # what `vidfleet streams rm` does
    stopped = fleet.state("street", "stopped", timeout=5)
    assert not fleet.client.exists(KEYS.capture_owner("street"))
    length = fleet.client.xlen(KEYS.frames("street"))
    assert int(stopped["frames"]) >= length  # trimmed or equal: nothing appended after the stop
    assert fleet.client.xlen(KEYS.frames("street")) == length


def test_the_familiar_arguments_still_work(capture_fleet: CaptureFleet) -> None:
    fleet = capture_fleet
    fleet.send(infile=str(fleet.videos / "street.mp4"), output="legacy", fmt=".jpg", quality=70, count=8, maxlen=100)
    done = fleet.state("legacy", "ended")
    assert done["frames"] == "8"
    assert [f.seq for f in fleet.frames("legacy")] == list(range(8))


@pytest.mark.parametrize(
    ("name", "source", "message"),
    [
        ("notes", "NOTES", "not a readable video"),
        ("gopher", "gopher://cam.local/1", "URL scheme 'gopher' is not allowed"),
        ("outside", "/etc/hostname", "outside the input roots"),
    ],
)
def test_a_bad_source_is_reported_without_a_crash_loop(capture_fleet: CaptureFleet, name: str, source: str, message: str) -> None:
    fleet = capture_fleet
    notes = fleet.videos / "notes.mp4"
    notes.write_text("not a video\n")
    fleet.send(stream=StreamSpec(name=name, source=source.replace("NOTES", str(notes))).model_dump(mode="json"))
    failed = fleet.state(name, "failed")
    assert message in failed["error"]
    assert fleet.worker.alive
    assert message in fleet.worker.output()
    assert fleet.client.llen(Queue.CAPTURE.value) == 0  # acknowledged: never delivered again


def test_a_full_worker_leaves_further_streams_in_the_queue(capture_fleet: CaptureFleet) -> None:
    """Concurrency 3: a fourth stream waits in the queue (where scaling sees it) until a slot frees."""
    fleet = capture_fleet
    names = [f"cam{i}" for i in range(4)]
    for name in names:
        fleet.send(stream=StreamSpec(name=name, source=str(fleet.videos / "street.mp4"), loop=True, fps=5).model_dump(mode="json"))
    wait_for(lambda: sum(fleet.status(n).get("state") == "running" for n in names) == 3, timeout=10, what="3 captures running")
    waiting = next(n for n in names if not fleet.status(n))
    assert fleet.client.llen(Queue.CAPTURE.value) == 1

    fleet.client.set(KEYS.capture_stop(next(n for n in names if n != waiting)), "1", ex=60)
    fleet.state(waiting, "running", timeout=10)
    for name in names:
        fleet.client.set(KEYS.capture_stop(name), "1", ex=60)
    wait_for(lambda: all(fleet.status(n).get("state") == "stopped" for n in names), timeout=10, what="all stopped")


def test_worker_shutdown_stops_its_captures_cleanly(capture_fleet: CaptureFleet) -> None:
    fleet = capture_fleet
    spec = StreamSpec(name="last", source=str(fleet.videos / "street.mp4"), loop=True)
    fleet.send(stream=spec.model_dump(mode="json"))
    fleet.state("last", "running")

    fleet.worker.process.send_signal(signal.SIGTERM)  # a pod being deleted: warm shutdown
    fleet.worker.process.wait(timeout=20)

    assert fleet.status("last")["state"] == "stopped"
    assert not fleet.client.exists(KEYS.capture_owner("last"))
