"""The capture loop against a real redis-server and real video files (no Celery)."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from tests.servers import wait_for
from vidfleet_capture.loop import CaptureResult, capture
from vidfleet_capture.metrics import ERROR_KINDS, CaptureMetrics
from vidfleet_capture.status import FAILED_TTL_SECONDS, owner_key
from vidfleet_common import metric_names as m
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.streams import HEARTBEAT_TTL_SECONDS, FrameMessage, StreamSpec


def frames(client: Any, keys: RedisKeys, name: str) -> list[FrameMessage]:
    return [FrameMessage.from_fields(fields) for _, fields in client.xrange(keys.frames(name))]


def status(client: Any, keys: RedisKeys, name: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(keys.capture_status(name)).items()}


def sample(registry: CollectorRegistry, spec: m.MetricSpec, **labels: str) -> float:
    return registry.get_sample_value(spec.name, labels) or 0.0


class Background:
    """capture() on a thread, as a task runs it; `stop()` is its should_stop."""

    def __init__(self, spec: StreamSpec, client: Any, keys: RedisKeys, **kwargs: Any) -> None:
        self._stop = threading.Event()
        self.result: CaptureResult | None = None
        kwargs.setdefault("worker", "w1")

        def run() -> None:
            self.result = capture(spec, client, keys, should_stop=self._stop.is_set, **kwargs)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self) -> CaptureResult:
        self._stop.set()
        return self.join()

    def join(self, timeout: float = 10) -> CaptureResult:
        self.thread.join(timeout)
        assert self.result is not None, "capture did not return"
        return self.result


def test_every_frame_is_appended_in_order_as_a_frame_message(client, keys: RedisKeys, capture_videos: dict[str, Path]) -> None:
    registry = CollectorRegistry()
    spec = StreamSpec(name="cam", source=str(capture_videos["vga"]), realtime=False, quality=80)

    result = capture(spec, client, keys, worker="w1", metrics=CaptureMetrics(registry))

    assert (result.state, result.reason, result.frames, result.seq) == ("ended", "end of file", 45, 44)
    got = frames(client, keys, "cam")
    assert [f.seq for f in got] == list(range(45))
    assert all(b.ts > a.ts for a, b in zip(got, got[1:]))
    assert {(f.width, f.height, f.codec) for f in got} == {(640, 480, "jpg")}
    image = cv2.imdecode(np.frombuffer(got[0].data, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3)
    final = status(client, keys, "cam")
    assert (final["state"], final["frames"], final["seq"], final["worker"], final["error"]) == ("ended", "45", "44", "w1", "")
    assert int(final["ts"]) == got[-1].ts
    assert client.ttl(keys.capture_status("cam")) > 24 * 3600, "an ended stream stays ended: not replayed"
    assert not client.exists(owner_key(keys, "cam"))
    for stage in ("read", "encoded", "appended"):
        assert sample(registry, m.CAPTURE_FRAMES, stream="cam", stage=stage) == 45
    # every error kind exists at zero, so that increase() in alerts sees a stream's first error
    for kind in ERROR_KINDS:
        assert registry.get_sample_value(m.CAPTURE_ERRORS.name, {"stream": "cam", "kind": kind}) == 0.0


@pytest.mark.parametrize(("fps", "count"), [(None, 30), (10.0, 20)])
def test_real_time_plays_at_the_wanted_rate(client, keys: RedisKeys, capture_videos: dict[str, Path], fps, count) -> None:
    """The file is 15 fps: played as is, and at 10 fps (every third frame dropped), within 10 %."""
    spec = StreamSpec(name="live", source=str(capture_videos["vga"]), fps=fps, count=count)

    result = capture(spec, client, keys, worker="w1")

    got = frames(client, keys, "live")
    assert result.reason == "count" and [f.seq for f in got] == list(range(count))
    rate = (len(got) - 1) / ((got[-1].ts - got[0].ts) / 1e9)
    assert rate == pytest.approx(fps or 15.0, rel=0.10)


def test_count_stops_after_that_many_frames(client, keys: RedisKeys, capture_videos: dict[str, Path]) -> None:
    spec = StreamSpec(name="few", source=str(capture_videos["tiny"]), realtime=False, count=7)
    result = capture(spec, client, keys, worker="w1")
    assert (result.reason, result.frames) == ("count", 7)
    assert client.xlen(keys.frames("few")) == 7


def test_the_stream_stays_within_maxlen_and_approximate_trimming_slack(client, keys: RedisKeys, capture_videos: dict[str, Path]) -> None:
    """Small frames pack many entries per stream node, so `MAXLEN ~` really is approximate here."""
    slack = int(client.config_get("stream-node-max-entries")["stream-node-max-entries"])
    spec = StreamSpec(name="short", source=str(capture_videos["tiny"]), realtime=False, loop=True, count=600, retention_seconds=1.0)
    maxlen = spec.maxlen(30.0)  # the file's 30 fps x 1 s
    assert maxlen == 30

    result = capture(spec, client, keys, worker="w1")

    length = client.xlen(keys.frames("short"))
    assert result.frames == 600
    assert maxlen <= length <= maxlen + slack
    assert frames(client, keys, "short")[-1].seq == 599


def test_maxlen_override(client, keys: RedisKeys, capture_videos: dict[str, Path]) -> None:
    spec = StreamSpec(name="cap", source=str(capture_videos["vga"]), realtime=False)
    capture(spec, client, keys, worker="w1", maxlen=20)
    assert client.xlen(keys.frames("cap")) == 20  # 30 kB entries: one per node, trimming is exact


@pytest.mark.parametrize("codec", ["jpg", "png"])  # JPEG from the decoder's planes; PNG from OpenCV's BGR
def test_resize(client, keys: RedisKeys, capture_videos: dict[str, Path], codec: str) -> None:
    spec = StreamSpec(name="small", source=str(capture_videos["vga"]), realtime=False, count=3, width=320, codec=codec)
    capture(spec, client, keys, worker="w1")
    got = frames(client, keys, "small")
    assert {(f.width, f.height, f.codec) for f in got} == {(320, 240, codec)}
    image = cv2.imdecode(np.frombuffer(got[0].data, np.uint8), cv2.IMREAD_COLOR)
    _, first = cv2.VideoCapture(str(capture_videos["vga"])).read()
    expected = cv2.resize(first, (320, 240), interpolation=cv2.INTER_AREA)
    assert image.shape == (240, 320, 3)
    assert np.abs(image.astype(np.int16) - expected).mean() < (3.0 if codec == "jpg" else 0.5)


def test_an_http_mjpeg_camera_is_captured(client, keys: RedisKeys, capture_videos: dict[str, Path]) -> None:
    """The kind of camera that serves multipart JPEG over HTTP: its frames arrive full range, passed through as planes."""
    capture_ = cv2.VideoCapture(str(capture_videos["vga"]))
    images = [capture_.read()[1] for _ in range(12)]
    with mjpeg_server([cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for image in images]) as url:
        result = capture(StreamSpec(name="ipcam", source=url, count=10, quality=90), client, keys, worker="w1")

    assert (result.state, result.reason, result.frames) == ("ended", "count", 10)
    got = frames(client, keys, "ipcam")
    assert [f.seq for f in got] == list(range(10)) and {(f.width, f.height) for f in got} == {(640, 480)}
    for message, image in zip(got, images):
        decoded = cv2.imdecode(np.frombuffer(message.data, np.uint8), cv2.IMREAD_COLOR)
        assert np.abs(decoded.astype(np.int16) - image).mean() < 2.0


@contextlib.contextmanager
def mjpeg_server(jpegs: list[bytes]) -> Iterator[str]:
    """A local HTTP camera: GET streams `jpegs` as multipart/x-mixed-replace, then closes."""

    class Camera(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            with contextlib.suppress(ConnectionError):
                for jpeg in jpegs:
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpeg), jpeg))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/video.mjpg"
    finally:
        server.shutdown()
        server.server_close()


def test_the_stop_key_stops_the_capture_cleanly(client, keys: RedisKeys, capture_videos: dict[str, Path]) -> None:
    spec = StreamSpec(name="cam", source=str(capture_videos["vga"]), loop=True)
    running = Background(spec, client, keys)
    wait_for(lambda: status(client, keys, "cam").get("state") == "running", timeout=5, what="state running")
    assert client.get(owner_key(keys, "cam")) == b"w1"
    assert 0 < client.ttl(keys.capture_status("cam")) <= HEARTBEAT_TTL_SECONDS
    wait_for(lambda: client.xlen(keys.frames("cam")) >= 3, timeout=5, what="frames")

    client.set(keys.capture_stop("cam"), "1")
    result = running.join(timeout=5)

    assert (result.state, result.reason) == ("stopped", "stop key")
    assert status(client, keys, "cam")["state"] == "stopped"
    assert not client.exists(owner_key(keys, "cam"))
    assert client.exists(keys.capture_stop("cam"))  # the coordinator's key: the capture only reads it
    assert [f.seq for f in frames(client, keys, "cam")] == list(range(result.frames))


def test_should_stop_stops_the_capture(client, keys: RedisKeys, capture_videos: dict[str, Path]) -> None:
    running = Background(StreamSpec(name="cam", source=str(capture_videos["vga"]), loop=True), client, keys)
    wait_for(lambda: client.xlen(keys.frames("cam")) >= 2, timeout=5, what="frames")
    assert running.stop().reason == "stop"


def test_a_second_capture_of_a_stream_exits_at_once(client, keys: RedisKeys, capture_videos: dict[str, Path], caplog) -> None:
    first = Background(StreamSpec(name="cam", source=str(capture_videos["vga"]), loop=True), client, keys, worker="w1")
    wait_for(lambda: status(client, keys, "cam").get("state") == "running", timeout=5, what="state running")

    second = capture(StreamSpec(name="cam", source=str(capture_videos["vga"])), client, keys, worker="w2")

    assert (second.state, second.owner) == ("duplicate", "w1")
    assert "stream cam: already captured by w1; this capture (w2) exits" in caplog.text
    assert status(client, keys, "cam")["worker"] == "w1"
    assert first.stop().state == "stopped"


@pytest.mark.parametrize(
    ("source", "kind", "message"),
    [
        ("ftp://cam.local/video.mp4", "input", "URL scheme 'ftp' is not allowed"),
        ("http://127.0.0.1:9/camera.mjpg", "open", "could not open the URL"),
        ("NOTES", "open", "not a readable video"),
        ("9", "open", "webcam 9: no such camera"),
        ("MISSING", "open", "no such file"),
        ("/etc/hostname", "input", "outside the input roots"),
    ],
)
def test_a_bad_source_fails_with_its_reason_kept_visible(client, keys: RedisKeys, tmp_path: Path, source, kind, message) -> None:
    (tmp_path / "notes.mp4").write_text("not a video\n")
    source = source.replace("NOTES", str(tmp_path / "notes.mp4")).replace("MISSING", str(tmp_path / "gone.mp4"))
    registry = CollectorRegistry()

    result = capture(
        StreamSpec(name="bad", source=source), client, keys, worker="w1", metrics=CaptureMetrics(registry), input_roots=[tmp_path]
    )

    assert (result.state, result.reason) == ("failed", kind)
    assert message in result.error and "\n" not in result.error
    final = status(client, keys, "bad")
    assert final["state"] == "failed" and final["error"] == result.error
    assert HEARTBEAT_TTL_SECONDS < client.ttl(keys.capture_status("bad")) <= FAILED_TTL_SECONDS
    assert not client.exists(owner_key(keys, "bad"))
    assert sample(registry, m.CAPTURE_ERRORS, stream="bad", kind="open") == 1


def test_a_source_that_vanishes_and_comes_back_is_reconnected_and_counted(
    client, keys: RedisKeys, capture_videos: dict[str, Path], tmp_path: Path
) -> None:
    camera = tmp_path / "camera.mp4"
    shutil.copy(capture_videos["vga"], camera)
    registry = CollectorRegistry()
    running = Background(StreamSpec(name="cam", source=str(camera), loop=True), client, keys, metrics=CaptureMetrics(registry))
    wait_for(lambda: client.xlen(keys.frames("cam")) >= 5, timeout=5, what="frames")

    camera.rename(tmp_path / "away.mp4")
    wait_for(lambda: status(client, keys, "cam").get("state") == "reconnecting", timeout=5, what="state reconnecting")
    assert "source lost" in status(client, keys, "cam")["error"] or "no such file" in status(client, keys, "cam")["error"]
    before = client.xlen(keys.frames("cam"))
    (tmp_path / "away.mp4").rename(camera)
    wait_for(lambda: client.xlen(keys.frames("cam")) >= before + 5, timeout=15, what="frames after the reconnect")
    wait_for(lambda: status(client, keys, "cam").get("state") == "running", timeout=5, what="state running again")

    result = running.stop()
    assert result.reconnects == 1 and status(client, keys, "cam")["reconnects"] == "1"
    assert sample(registry, m.CAPTURE_RECONNECTS, stream="cam") == 1
    assert [f.seq for f in frames(client, keys, "cam")] == list(range(result.frames))  # seq continues


def test_heartbeat_reports_fps_and_refreshes_the_lock(client, keys: RedisKeys, capture_videos: dict[str, Path]) -> None:
    registry = CollectorRegistry()
    running = Background(StreamSpec(name="cam", source=str(capture_videos["vga"]), loop=True), client, keys, metrics=CaptureMetrics(registry))
    try:
        wait_for(lambda: float(status(client, keys, "cam").get("fps", 0)) > 12, timeout=6, what="fps in the status")
        current = status(client, keys, "cam")
        assert float(current["fps"]) == pytest.approx(15.0, rel=0.15)
        assert int(current["frames"]) > 0 and int(current["seq"]) == int(current["frames"]) - 1
        assert sample(registry, m.CAPTURE_FPS, stream="cam") == pytest.approx(15.0, rel=0.15)
        assert client.ttl(owner_key(keys, "cam")) > HEARTBEAT_TTL_SECONDS - 4
    finally:
        running.stop()
    assert sample(registry, m.CAPTURE_FPS, stream="cam") == 0


def test_capture_rides_out_a_redis_restart(tmp_path: Path, capture_videos: dict[str, Path]) -> None:
    from tests.servers import RedisServer
    from vidfleet_common.fleet import redis_client
    from vidfleet_common.settings import Settings

    server = RedisServer(tmp_path / "redis").start()  # append-only: what was appended survives the kill
    try:
        client = redis_client(Settings(CELERY_BROKER_URL=server.url))
        keys = RedisKeys("restart:")
        running = Background(StreamSpec(name="cam", source=str(capture_videos["tiny"]), loop=True), client, keys)
        wait_for(lambda: client.xlen(keys.frames("cam")) >= 10, timeout=5, what="frames")

        server.restart(down_for=1.0)

        before = client.xlen(keys.frames("cam"))
        wait_for(lambda: client.xlen(keys.frames("cam")) >= before + 30, timeout=10, what="frames after the restart")
        wait_for(lambda: status(client, keys, "cam").get("state") == "running", timeout=5, what="the status hash again")
        assert client.get(owner_key(keys, "cam")) == b"w1"
        result = running.stop()
        assert result.state == "stopped"
        seqs = [f.seq for f in frames(client, keys, "cam")]
        assert seqs == sorted(seqs) and set(seqs) == set(range(result.frames))  # none lost; order kept
    finally:
        server.kill()
