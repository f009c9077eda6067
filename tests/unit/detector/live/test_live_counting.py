"""Live counting in-process against a real redis-server: the events a stream gets are the events
`vidfleet process` writes for the same video, committed with the frames they came from, continued by a
replacement detector without a duplicate, and delivered to a webhook at least once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from prometheus_client import CollectorRegistry

from tests.servers import wait_for
from tests.webhooks import WebhookReceiver
from tests.unit.detector.live.test_live_detector import SORT, detector, drain, feed, redis, runner, tracks, want  # noqa: F401 - fixtures
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.counts import Counts, event_from_fields
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.streams import CONSUMER_GROUP, FrameMessage
from vidfleet_detector.live.metrics import LiveMetrics
from vidfleet_detector.live.webhook import WebhookSink
from vidfleet_detector.pipeline import process_video

COUNTING = {
    **SORT,
    "lines": [{"name": "gate", "points": [[0.5, 0], [0.5, 1]]}, {"name": "belt", "points": [[0, 240], [640, 240]], "directions": ["down", "up"]}],
    "zones": [{"name": "left", "polygon": [[0, 0], [320, 0], [320, 480], [0, 480]], "capacity": 1}],
}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vidfleet_detector.synthetic import generate_video

    return generate_video(tmp_path_factory.mktemp("live-count") / "crossing.mp4", seed=520, frames=90, objects=4).video


@pytest.fixture
def keys(request: pytest.FixtureRequest) -> RedisKeys:
    return RedisKeys(f"count-{request.node.name[:24]}:")


def events(redis, keys: RedisKeys, name: str) -> list[dict]:
    return [event_from_fields(fields) for _, fields in redis.xrange(keys.events(name))]


def saved_counts(redis, keys: RedisKeys, name: str) -> Counts:
    return Counts.model_validate_json(redis.hget(keys.counting_state(name), "counts"))


def identity(e: dict) -> tuple:
    return (e["kind"], e.get("line") or e.get("zone"), e["track_id"], e.get("direction"), e.get("reason"))


def test_a_stream_counts_what_vidfleet_process_counts(redis, keys, runner, video: Path, tmp_path: Path) -> None:
    want(redis, keys, "cam", policy="all", config=COUNTING)
    frames = feed(redis, keys, "cam", video)
    metrics = LiveMetrics(CollectorRegistry())
    live = detector(redis, keys, runner, metrics=metrics)
    drain(live)
    assert [m.seq for m in tracks(redis, keys, "cam")] == list(range(frames))

    result = process_video(VideoRef(str(video), "crossing"), JobConfig(model="vidfleet-shapes-n.pt", batch=4, **COUNTING), runner, tmp_path)
    batch = [json.loads(line) for line in (tmp_path / "crossing.events.jsonl").read_text().splitlines()]
    streamed = events(redis, keys, "cam")
    assert [e for e in batch if e.get("reason") != "end"], "the video should give events"
    # Same events, same tracks; the stream numbers frames by seq (from 0) and times them by capture time.
    assert [(identity(e), e["frame"] - 1) for e in batch if e.get("reason") != "end"] == [(identity(e), e["seq"]) for e in streamed]
    assert [e["n"] for e in streamed] == list(range(1, len(streamed) + 1))
    assert all(e["stream"] == "cam" and e["time"] == pytest.approx(e["ts"] / 1e9, abs=1e-3) for e in streamed)

    counts = saved_counts(redis, keys, "cam")
    assert counts.lines == result.counts.lines
    assert counts.zones["left"].entries == result.counts.zones["left"].entries
    inside = counts.zones["left"].inside
    assert inside == sum(1 for e in streamed if e["kind"] == "enter") - sum(1 for e in streamed if e["kind"] == "exit")

    sample = metrics.registry.get_sample_value
    for direction, count in counts.lines["gate"].crossings.items():
        assert sum(sample("vidfleet_line_crossings_total", {"stream": "cam", "line": "gate", "direction": direction, "class_name": c}) or 0
                   for c in ("circle", "square", "triangle", "other")) == count
    assert sum(sample("vidfleet_zone_objects", {"stream": "cam", "zone": "left", "class_name": c}) for c in ("circle", "square", "triangle", "other")) == inside
    assert sample("vidfleet_zone_capacity", {"stream": "cam", "zone": "left"}) == 1
    assert sample("vidfleet_zone_dwell_seconds_count", {"stream": "cam", "zone": "left"}) == counts.zones["left"].exits

    live.close()  # the stream leaves this detector: its series go with it
    assert sample("vidfleet_zone_objects", {"stream": "cam", "zone": "left", "class_name": "circle"}) is None


def feed_part(redis, keys: RedisKeys, name: str, video: Path, start: int, stop: int) -> None:
    """Frames start..stop-1 of `video` into the frame stream, with their seq."""
    capture = cv2.VideoCapture(str(video))
    for seq in range(stop):
        ok, frame = capture.read()
        assert ok
        if seq >= start:
            data = cv2.imencode(".png", frame)[1].tobytes()
            redis.xadd(keys.frames(name), FrameMessage(seq, 1_700_000_000_000_000_000 + seq * 66_666_667, 640, 480, "png", data).fields())


def test_a_replacement_detector_continues_the_counts_and_counts_nothing_twice(redis, keys, runner, video: Path) -> None:
    want(redis, keys, "door", policy="all", config=COUNTING)
    feed_part(redis, keys, "door", video, 0, 45)
    first = detector(redis, keys, runner, holder="first", lease_ttl_s=30)
    drain(first)
    committed = events(redis, keys, "door")
    before = saved_counts(redis, keys, "door")
    first_ids = {t.id for m in tracks(redis, keys, "door") for t in m.tracks}
    assert committed and first_ids
    feed_part(redis, keys, "door", video, 45, 90)
    stolen = first._read()  # read, never acknowledged: then it "dies"
    assert stolen and redis.xpending(keys.frames("door"), CONSUMER_GROUP)["pending"] == len(stolen)

    redis.delete(keys.stream_lease("door"))  # its lease expired
    second = detector(redis, keys, runner, holder="second")
    drain(second)
    first._detect_track_publish(stolen)  # the old holder wakes up: it publishes neither tracks nor events nor state
    assert "door" not in first.streams

    assert [m.seq for m in tracks(redis, keys, "door")] == list(range(90))
    streamed = events(redis, keys, "door")
    assert streamed[: len(committed)] == committed, "what was committed stays"
    assert [e["n"] for e in streamed] == list(range(1, len(streamed) + 1)), "events numbered without a gap or a repeat"
    keyed = [(identity(e), e["seq"]) for e in streamed]
    assert len(keyed) == len(set(keyed))
    # The replacement's track ids continue after the first holder's: an id never names two objects.
    second_ids = {t.id for m in tracks(redis, keys, "door") if m.seq >= 45 for t in m.tracks}
    assert second_ids and min(second_ids) > max(first_ids)
    # Tracks of the first holder still in the zone at the handover exit it as lost; a crossing is never counted twice.
    handover = [e for e in streamed[len(committed):] if e["kind"] == "exit" and e["track_id"] in first_ids]
    assert all(e["reason"] == "lost" for e in handover) and len(handover) == before.zones["left"].inside
    after = saved_counts(redis, keys, "door")
    for name, line in before.lines.items():
        assert all(after.lines[name].crossings[d] >= n for d, n in line.crossings.items()), "counts continue, never restart"
        assert sum(after.lines[name].crossings.values()) == sum(1 for e in streamed if e.get("line") == name)
    assert after.zones["left"].entries == sum(1 for e in streamed if e["kind"] == "enter")
    assert after.zones["left"].inside == sum(1 for e in streamed if e["kind"] == "enter") - sum(1 for e in streamed if e["kind"] == "exit")


def test_a_class_the_model_lacks_or_a_point_outside_the_frame_turns_counting_off_not_tracking(redis, keys, runner, video: Path) -> None:
    want(redis, keys, "cars", policy="all", config={**SORT, "lines": [{"name": "gate", "points": [[320, 0], [320, 480]], "classes": ["car"]}]})
    want(redis, keys, "wide", policy="all", config={**SORT, "lines": [{"name": "gate", "points": [[1200, 0], [1200, 480]]}]})
    feed_part(redis, keys, "cars", video, 0, 12)
    feed_part(redis, keys, "wide", video, 0, 12)
    live = detector(redis, keys, runner)
    drain(live)
    live._heartbeat()
    for name, fragment in (("cars", "config key 'lines.0.classes': unknown class 'car'"),
                           ("wide", "config key 'lines.0.points': point [1200, 0] is outside the 640x480 frame")):
        assert len(tracks(redis, keys, name)) == 12, "tracking goes on"
        assert fragment in redis.hget(keys.detector_status(name), "counting_error").decode()
        assert not redis.exists(keys.events(name))


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(**getattr(request, "param", {})).start()
    yield server
    server.stop()


@pytest.mark.parametrize("receiver", [{"fail": 2}], indirect=True)
def test_the_webhook_gets_every_event_once_acknowledged_retrying_with_backoff(redis, keys, runner, video: Path, receiver: WebhookReceiver) -> None:
    want(redis, keys, "hooked", policy="all", config=COUNTING, webhook=receiver.url)
    feed(redis, keys, "hooked", video)
    metrics = LiveMetrics(CollectorRegistry())
    live = detector(redis, keys, runner, metrics=metrics)
    drain(live)
    expected = [entry_id.decode() for entry_id, _ in redis.xrange(keys.events("hooked"))]
    held = lambda: {name: st.spec for name, st in live.streams.items()}  # noqa: E731
    sink = WebhookSink(redis, keys, live.holder, held, metrics=metrics, batch=7)

    def all_delivered() -> bool:
        sink.step()
        return [e["id"] for e in receiver.events()] == expected

    started = time.monotonic()
    wait_for(all_delivered, timeout=30, what="every event delivered", interval=0.05)
    assert time.monotonic() - started >= 0.5 + 1.0 - 0.1, "two failures: backoff 0.5 s, then 1 s"
    assert all(body["stream"] == "hooked" and len(body["events"]) <= 7 for body in receiver.bodies)
    assert receiver.bodies[0]["events"][0] == {**events(redis, keys, "hooked")[0], "id": expected[0]}
    sample = metrics.registry.get_sample_value
    assert sample("vidfleet_webhook_requests_total", {"stream": "hooked", "outcome": "failed"}) == 2
    assert sample("vidfleet_webhook_events_total", {"stream": "hooked", "outcome": "delivered"}) == len(expected)
    assert json.loads(redis.get(keys.webhook_cursor("hooked")))["id"] == expected[-1]
    # A replacement's sink carries on from the cursor in Redis: nothing is sent again.
    posts = len(receiver.bodies)
    WebhookSink(redis, keys, live.holder, held).step()
    assert len(receiver.bodies) == posts


@pytest.mark.parametrize("receiver", [{"hang": threading.Event()}], indirect=True)
def test_a_webhook_that_hangs_does_not_hold_the_detector_back(redis, keys, runner, video: Path, receiver: WebhookReceiver) -> None:
    want(redis, keys, "stuck", policy="all", config=COUNTING, webhook=receiver.url)
    live = detector(redis, keys, runner)
    live.maintain()
    sink = WebhookSink(redis, keys, live.holder, lambda: {n: st.spec for n, st in live.streams.copy().items()}, timeout_s=20)
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    try:
        frames = feed(redis, keys, "stuck", video)
        wait_for(lambda: receiver.attempts >= 1 or (live.step() and False), timeout=60, what="the webhook called", interval=0.01)
        drain(live)  # the sink is stuck in its POST: the detector tracks every frame regardless
        assert [m.seq for m in tracks(redis, keys, "stuck")] == list(range(frames)) and receiver.bodies == []
    finally:
        stop.set()
        receiver.hang.set()
        thread.join(timeout=30)
