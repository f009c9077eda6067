"""The live detector in-process against a real redis-server: frames written as a capture writes them."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import BUNDLED_MODEL
from tests.servers import RedisServer
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.fleet import redis_client
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.settings import Settings
from vidfleet_common.streams import CONSUMER_GROUP, FrameMessage, StreamSpec, TrackMessage
from vidfleet_detector.live.detector import LiveDetector
from vidfleet_detector.live.metrics import LiveMetrics
from vidfleet_detector.model_runner import ModelRunner
from vidfleet_detector.pipeline import process_video

SORT = {"max_age": 3, "min_hits": 2, "iou_threshold": 0.3}


@pytest.fixture(scope="module")
def redis(redis_server: RedisServer) -> object:
    return redis_client(Settings(CELERY_BROKER_URL=redis_server.url))


@pytest.fixture(scope="module")
def runner() -> ModelRunner:
    return ModelRunner(JobConfig(model=BUNDLED_MODEL, batch=4))


@pytest.fixture
def keys(request: pytest.FixtureRequest) -> RedisKeys:
    return RedisKeys(f"live-{request.node.name[:20]}:")


def want(redis, keys: RedisKeys, name: str, **spec) -> StreamSpec:
    stream = StreamSpec(name=name, source="0", **spec)
    redis.hset(keys.stream_registry(), name, stream.model_dump_json())
    return stream


def feed(redis, keys: RedisKeys, name: str, video: Path, codec: str = "png") -> int:
    """Write every frame of `video` into the frame stream, as a capture would (lossless PNG by default)."""
    capture = cv2.VideoCapture(str(video))
    seq = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            return seq
        data = cv2.imencode(f".{codec}", frame)[1].tobytes()
        message = FrameMessage(seq, 1_700_000_000_000_000_000 + seq, frame.shape[1], frame.shape[0], codec, data)
        redis.xadd(keys.frames(name), message.fields())
        seq += 1


def tracks(redis, keys: RedisKeys, name: str) -> list[TrackMessage]:
    return [TrackMessage.from_fields(fields) for _, fields in redis.xrange(keys.tracks(name))]


def detector(redis, keys: RedisKeys, runner: ModelRunner, holder: str = "d1", **kwargs) -> LiveDetector:
    return LiveDetector(redis, keys, runner, holder=holder, batch=4, block_ms=10, **kwargs)


def drain(live: LiveDetector, rounds: int = 50) -> None:
    for _ in range(rounds):
        if live.step() == 0 and live.streams and not any(s.backlog for s in live.streams.values()):
            if live.step() == 0:
                return


def test_policy_all_gives_the_tracks_vidfleet_process_gives(redis, keys, runner, video_dir: Path, tmp_path: Path) -> None:
    want(redis, keys, "cam", policy="all", config=SORT)
    frames = feed(redis, keys, "cam", video_dir / "short_a.mp4")
    live = detector(redis, keys, runner)
    drain(live)

    published = tracks(redis, keys, "cam")
    assert [m.seq for m in published] == list(range(frames))
    assert redis.xpending(keys.frames("cam"), CONSUMER_GROUP)["pending"] == 0

    config = JobConfig(model=BUNDLED_MODEL, batch=4, **SORT)
    result = process_video(VideoRef(str(video_dir / "short_a.mp4"), "short_a"), config, runner, tmp_path)
    expected: dict[int, dict[int, list[float]]] = {}
    for line in (tmp_path / "short_a.tracks.txt").read_text().splitlines():
        frame, tid, x, y, w, h = (float(v) for v in line.split(",")[:6])
        expected.setdefault(int(frame), {})[int(tid)] = [x, y, x + w, y + h]
    got = {m.seq + 1: {t.id: list(t.box) for t in m.tracks} for m in published if m.tracks}
    assert result.track_rows > 0 and got.keys() == expected.keys()
    for frame, boxes in expected.items():
        assert got[frame].keys() == boxes.keys(), f"frame {frame}: track ids differ"
        for tid, box in boxes.items():
            assert got[frame][tid] == pytest.approx(box, abs=0.02), f"frame {frame} track {tid}"


def test_policy_latest_skips_to_the_newest_frames_and_counts_them(redis, keys, runner, video_dir: Path) -> None:
    want(redis, keys, "busy", policy="latest", config=SORT)
    frames = feed(redis, keys, "busy", video_dir / "short_a.mp4", codec="jpg")
    metrics = LiveMetrics(CollectorRegistry())
    live = detector(redis, keys, runner, metrics=metrics)
    drain(live)

    published = [m.seq for m in tracks(redis, keys, "busy")]
    assert published == list(range(frames - 4, frames))  # one read of 30 frames: keep the newest batch
    assert metrics.registry.get_sample_value("vidfleet_live_frames_skipped_total", {"stream": "busy"}) == frames - 4
    assert metrics.registry.get_sample_value("vidfleet_live_frames_total", {"stream": "busy"}) == 4
    assert metrics.registry.get_sample_value("vidfleet_live_latency_seconds_count", {"stream": "busy"}) == 4
    assert redis.xpending(keys.frames("busy"), CONSUMER_GROUP)["pending"] == 0
    assert redis.hget(keys.detector_status("busy"), "skipped") in (None, b"0", str(frames - 4).encode())


def test_a_new_holder_takes_over_pending_frames_and_the_old_one_cannot_ack(redis, keys, runner, video_dir: Path) -> None:
    want(redis, keys, "handover", policy="all", config=SORT)
    frames = feed(redis, keys, "handover", video_dir / "short_b.mp4")
    first = detector(redis, keys, runner, holder="first", lease_ttl_s=30)
    first.maintain()
    stolen = first._read() or first._read()  # (its own backlog first) read, never acknowledged: then it "dies"
    assert stolen and redis.xpending(keys.frames("handover"), CONSUMER_GROUP)["pending"] == len(stolen)

    redis.delete(keys.stream_lease("handover"))  # its lease expired
    second = detector(redis, keys, runner, holder="second")
    drain(second)
    first._detect_track_publish(stolen)  # the old holder wakes up and tries to publish

    seqs = [m.seq for m in tracks(redis, keys, "handover")]
    assert seqs == list(range(frames)), "every frame tracked once, in order, by the new holder"
    assert "handover" not in first.streams
    assert redis.xpending(keys.frames("handover"), CONSUMER_GROUP)["pending"] == 0


def test_two_detectors_split_the_streams_and_a_removed_stream_is_released(redis, keys, runner) -> None:
    for name in ("a", "b", "c", "d"):
        want(redis, keys, name)
    one, two = detector(redis, keys, runner, holder="one"), detector(redis, keys, runner, holder="two")
    one._heartbeat()
    two._heartbeat()
    one.maintain()
    two.maintain()
    assert len(one.streams) == 2 and len(two.streams) == 2 and not set(one.streams) & set(two.streams)

    name = next(iter(one.streams))
    redis.hdel(keys.stream_registry(), name)
    one.maintain()
    assert name not in one.streams and redis.get(keys.stream_lease(name)) is None
    one.close()
    assert {k.decode() for k in redis.keys(keys.stream_lease("*"))} == {keys.stream_lease(n) for n in two.streams}
