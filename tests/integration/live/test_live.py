"""Live streams on a real fleet: redis-server, the coordinator (registry + reconciler), capture workers
and live detectors as processes, generated videos played as cameras."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BUNDLED_MODEL
from tests.fleet import TOKEN, Fleet
from tests.servers import wait_for
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.fleet import redis_client
from vidfleet_common.settings import Settings
from vidfleet_common.streams import CONSUMER_GROUP, TrackMessage
from vidfleet_detector.live.detector import ACQUIRE_EVERY_S

SORT = {"max_age": 3, "min_hits": 2, "iou_threshold": 0.3}
LEASE_TTL = 4.0


@pytest.fixture(scope="module")
def live_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vidfleet_detector.synthetic import generate_video

    root = tmp_path_factory.mktemp("live-input")
    generate_video(root / "played.mp4", seed=60, frames=45, objects=4)
    generate_video(root / "endless.mp4", seed=61, frames=60, objects=3)
    (root / "notes.mp4").write_text("not a video\n")
    return root


@pytest.fixture
def fleet(tmp_path: Path, live_videos: Path) -> Iterator[Fleet]:
    running = Fleet.start(tmp_path, live_videos, workers=0)
    try:
        yield running
    finally:
        running.close()


def redis(fleet: Fleet):
    return redis_client(Settings(CELERY_BROKER_URL=fleet.redis.url))


def cli(fleet: Fleet, vidfleet_cli: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**fleet.env, "VIDFLEET_SERVER": fleet.coordinator.url, "VIDFLEET_API_TOKEN": TOKEN}
    return subprocess.run([*vidfleet_cli, *args], env=env, capture_output=True, text=True, timeout=120)


def stream(fleet: Fleet, name: str) -> dict:
    return fleet.coordinator.api("GET", f"/streams/{name}").json()


def tracks(fleet: Fleet, name: str) -> list[TrackMessage]:
    return [TrackMessage.from_fields(f) for _, f in redis(fleet).xrange(RedisKeys().tracks(name))]


def test_a_played_video_is_tracked_as_vidfleet_process_tracks_it(fleet: Fleet, live_videos: Path, vidfleet_cli: list[str], tmp_path: Path) -> None:
    fleet.add_capture("cap1")
    fleet.add_live_detector("live1", model=BUNDLED_MODEL, lease_ttl=LEASE_TTL)
    config = tmp_path / "sort.json"
    config.write_text(json.dumps({"model": BUNDLED_MODEL, "batch": 4, **SORT}))
    # PNG frames: the detector sees exactly the pixels `vidfleet process` decodes; `all`: nothing skipped.
    added = cli(fleet, vidfleet_cli, "streams", "add", "played", "played.mp4", "--codec", "png", "--policy", "all", "--config", str(config))
    assert added.returncode == 0, added.stderr

    wait_for(lambda: len(tracks(fleet, "played")) >= 45, timeout=120, what=f"45 frames tracked\n{fleet.logs()}", interval=0.2)
    published = tracks(fleet, "played")[:45]
    assert [m.seq for m in published] == list(range(45))
    assert all(m.ts < m.pts for m in published)

    local = tmp_path / "local"
    done = subprocess.run([*vidfleet_cli, "process", str(live_videos / "played.mp4"), "--config", str(config), "--out", str(local), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected: dict[int, dict[int, list[float]]] = {}
    for line in (local / "played.tracks.txt").read_text().splitlines():
        frame, tid, x, y, w, h = (float(v) for v in line.split(",")[:6])
        expected.setdefault(int(frame), {})[int(tid)] = [x, y, x + w, y + h]
    got = {m.seq + 1: {t.id: list(t.box) for t in m.tracks} for m in published if m.tracks}
    assert got.keys() == expected.keys()
    for frame, boxes in expected.items():
        assert got[frame].keys() == boxes.keys(), f"frame {frame}: track ids"
        for tid, box in boxes.items():
            assert got[frame][tid] == pytest.approx(box, abs=0.5), f"frame {frame}, track {tid}"

    tail = cli(fleet, vidfleet_cli, "tracks", "tail", "played", "--no-follow", "--last", "3")
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert tail.returncode == 0 and [m["seq"] for m in lines] == [m.seq for m in tracks(fleet, "played")[-3:]]


def test_streams_ls_shows_rates_and_bad_sources_fail_clearly(fleet: Fleet, live_videos: Path, vidfleet_cli: list[str]) -> None:
    fleet.add_capture("cap1", concurrency=3)
    fleet.add_live_detector("live1", model=BUNDLED_MODEL, lease_ttl=LEASE_TTL)
    assert cli(fleet, vidfleet_cli, "streams", "add", "cam", "endless.mp4", "--fps", "10", "--loop").returncode == 0
    assert cli(fleet, vidfleet_cli, "streams", "add", "notavideo", "notes.mp4").returncode == 0
    assert cli(fleet, vidfleet_cli, "streams", "add", "unreachable", "rtsp://127.0.0.1:9/none").returncode == 0
    assert cli(fleet, vidfleet_cli, "streams", "add", "nocam", "57").returncode == 0
    refused = cli(fleet, vidfleet_cli, "streams", "add", "gopher", "gopher://cam/1")
    assert refused.returncode == 1 and "URL scheme 'gopher' is not allowed" in refused.stderr

    running = wait_for(
        lambda: (s := stream(fleet, "cam"))["state"] == "running" and s["detector_fps"] and s["capture_fps"] and s,
        timeout=90, what=f"cam running and tracked\n{fleet.logs()}", interval=0.3,
    )
    assert 8.0 <= running["capture_fps"] <= 12.0, running
    for name, fragment in (("notavideo", "not a readable video"), ("unreachable", "could not open"), ("nocam", "57")):
        failed = wait_for(lambda: (s := stream(fleet, name))["state"] == "failed" and s, timeout=60, what=f"{name} failed", interval=0.3)
        assert fragment in failed["error"], failed
    listing = cli(fleet, vidfleet_cli, "streams", "ls")
    assert listing.returncode == 0 and "cam" in listing.stdout and "not a readable video" in listing.stdout

    metrics = {s.name: s for f in text_string_to_metric_families(fleet.coordinator.api("GET", "/metrics").text) for s in f.samples}
    assert metrics["vidfleet_streams_wanted"].value == 4 and metrics["vidfleet_streams_capturing"].value >= 1


def test_a_killed_capture_is_restarted_and_a_killed_detector_replaced(fleet: Fleet, vidfleet_cli: list[str]) -> None:
    first_capture = fleet.add_capture("cap1")
    first = fleet.add_live_detector("live1", model=BUNDLED_MODEL, lease_ttl=LEASE_TTL)
    assert cli(fleet, vidfleet_cli, "streams", "add", "door", "endless.mp4", "--fps", "10", "--loop", "--policy", "all").returncode == 0
    wait_for(lambda: stream(fleet, "door")["detector_fps"], timeout=90, what=f"door tracked\n{fleet.logs()}", interval=0.3)
    keys, client = RedisKeys(), redis(fleet)

    first_capture.kill()
    fleet.add_capture("cap2")
    restarted = wait_for(
        lambda: (s := stream(fleet, "door"))["state"] == "running" and s["capture_worker"] and s["capture_worker"].startswith("cap2") and s,
        timeout=60, what=f"the reconciler to restart door on cap2\n{fleet.logs()}", interval=0.3,
    )
    assert restarted["state"] == "running"

    second = fleet.add_live_detector("live2", model=BUNDLED_MODEL, lease_ttl=LEASE_TTL)
    wait_for(lambda: client.hlen(keys.detectors()) == 2, timeout=60, what=f"the second detector up\n{second.output()[-2000:]}", interval=0.2)
    old = client.get(keys.stream_lease("door")).decode()
    # The tracks stream is trimmed to its retention: count what comes after the newest entry, not the length.
    newest_before = client.xrevrange(keys.tracks("door"), count=1)[0][0].decode()
    first.kill()
    killed = time.monotonic()
    holder = wait_for(
        lambda: (h := client.get(keys.stream_lease("door"))) and h.decode() != old and h.decode(),
        timeout=3 * LEASE_TTL + 30, what="a new lease holder", interval=0.1,
    )
    taken_after = time.monotonic() - killed
    # The lease lapses at most one TTL after the kill; the survivor looks for free streams every ACQUIRE_EVERY_S.
    assert taken_after <= LEASE_TTL + ACQUIRE_EVERY_S + 1.0, f"taken over after {taken_after:.1f}s"
    wait_for(lambda: len(client.xrange(keys.tracks("door"), min=f"({newest_before}")) > 20, timeout=60, what=f"tracks again\n{second.output()[-2000:]}", interval=0.3)
    assert holder and stream(fleet, "door")["detector"] == holder
    frames = [(m.ts, m.seq) for m in tracks(fleet, "door")]
    assert len(frames) == len(set(frames)), "no frame tracked (acknowledged) twice"
    assert client.xpending(keys.frames("door"), CONSUMER_GROUP)["pending"] <= 20


def test_a_detector_killed_and_restarted_under_its_name_takes_its_streams_back(fleet: Fleet, vidfleet_cli: list[str]) -> None:
    """A container OOM-killed and restarted in its pod: same name, new process. Its leases are not its own any
    more (each start is a new holder), they lapse within one TTL and the new process takes them."""
    fleet.add_capture("cap1")
    first = fleet.add_live_detector("live1", model=BUNDLED_MODEL, lease_ttl=LEASE_TTL)
    for name in ("door", "gate"):
        assert cli(fleet, vidfleet_cli, "streams", "add", name, "endless.mp4", "--fps", "10", "--loop", "--policy", "all").returncode == 0
    for name in ("door", "gate"):
        wait_for(lambda: stream(fleet, name)["detector_fps"], timeout=90, what=f"{name} tracked\n{fleet.logs()}", interval=0.3)
    keys, client = RedisKeys(), redis(fleet)
    old = {name: client.get(keys.stream_lease(name)).decode() for name in ("door", "gate")}
    assert len(set(old.values())) == 1 and next(iter(old.values())).startswith("live1/")
    newest_before = {name: client.xrevrange(keys.tracks(name), count=1)[0][0].decode() for name in old}

    first.kill()
    killed = time.monotonic()
    fleet.add_live_detector("live1", model=BUNDLED_MODEL, lease_ttl=LEASE_TTL)
    ready = wait_for(
        lambda: any(h.decode().startswith("live1/") and h.decode() not in old.values() for h in client.hkeys(keys.detectors())) and time.monotonic(),
        timeout=90, what=f"the restarted detector up\n{fleet.logs()}", interval=0.1,
    )
    holders = wait_for(
        lambda: all((h := client.get(keys.stream_lease(n))) and h.decode() != old[n] for n in old) and {n: client.get(keys.stream_lease(n)).decode() for n in old},
        timeout=3 * LEASE_TTL + 30, what="the streams taken back", interval=0.1,
    )
    taken = time.monotonic()
    print(f"streams back {taken - killed:.1f}s after the kill, {taken - ready:.1f}s after the restarted detector was up (lease TTL {LEASE_TTL:.0f}s)")
    assert taken - max(ready, killed) <= LEASE_TTL + ACQUIRE_EVERY_S + 1.0, "within one lease TTL"
    assert len(set(holders.values())) == 1 and next(iter(holders.values())).startswith("live1/"), holders
    for name in old:
        wait_for(lambda: len(client.xrange(keys.tracks(name), min=f"({newest_before[name]}")) > 20, timeout=60, what=f"{name} tracked again", interval=0.3)
        frames = [(m.ts, m.seq) for m in tracks(fleet, name)]
        assert len(frames) == len(set(frames)), f"{name}: a frame tracked twice"


def test_a_removed_stream_stops_its_capture_and_releases_its_lease(fleet: Fleet, vidfleet_cli: list[str]) -> None:
    fleet.add_capture("cap1")
    fleet.add_live_detector("live1", model=BUNDLED_MODEL, lease_ttl=LEASE_TTL)
    assert cli(fleet, vidfleet_cli, "streams", "add", "gate", "endless.mp4", "--fps", "10", "--loop").returncode == 0
    wait_for(lambda: stream(fleet, "gate")["detector_fps"], timeout=90, what="gate tracked", interval=0.3)
    keys, client = RedisKeys(), redis(fleet)

    assert cli(fleet, vidfleet_cli, "streams", "rm", "gate").returncode == 0

    tracked = client.xlen(keys.tracks("gate"))
    assert tracked > 0 and client.exists(keys.frames("gate"))

    wait_for(lambda: client.hget(keys.capture_status("gate"), "state") in (None, b"stopped"), timeout=30, what="capture stopped", interval=0.2)
    wait_for(lambda: not client.exists(keys.stream_lease("gate")), timeout=30, what="lease released", interval=0.2)
    assert fleet.coordinator.api("GET", "/streams/gate").status_code == 404
    wait_for(lambda: not client.exists(keys.frames("gate")), timeout=30, what=f"the frame stream deleted\n{fleet.logs()}", interval=0.2)
    assert not client.exists(keys.capture_status("gate")) and not client.exists(keys.detector_status("gate"))
    assert not client.exists(keys.capture_owner("gate")) and not client.smembers(keys.streams_removed())
    assert client.xlen(keys.tracks("gate")) >= tracked, "tracks are kept"
