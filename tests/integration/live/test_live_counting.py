"""Counting on live streams with real processes: redis-server, the coordinator, a capture worker and live
detectors; a generated video played as a camera; a webhook receiver on loopback. Events reach the event
stream, `vidfleet events tail`, `streams ls`, the API and the webhook; a live detector killed mid-stream is
replaced, and its successor continues the counts with no event twice."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_MODEL
from tests.fleet import TOKEN, Fleet
from tests.servers import wait_for
from tests.webhooks import WebhookReceiver
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.counts import Counts, event_from_fields
from vidfleet_common.fleet import redis_client
from vidfleet_common.settings import Settings

LEASE_TTL = 4.0
COUNTING = {
    "model": BUNDLED_MODEL, "batch": 4, "max_age": 3, "min_hits": 2,
    "lines": [{"name": "gate", "points": [[0.5, 0], [0.5, 1]]}, {"name": "belt", "points": [[0, 0.5], [1, 0.5]], "directions": ["down", "up"]}],
    "zones": [{"name": "yard", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "capacity": 0}],
}


@pytest.fixture
def fleet(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    from vidfleet_detector.synthetic import generate_video

    inputs = tmp_path_factory.mktemp("live-count-input")
    generate_video(inputs / "yard.mp4", seed=530, frames=60, objects=5)
    running = Fleet.start(tmp_path, inputs, workers=0)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def cli(fleet: Fleet, vidfleet_cli: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**fleet.env, "VIDFLEET_SERVER": fleet.coordinator.url, "VIDFLEET_API_TOKEN": TOKEN}
    return subprocess.run([*vidfleet_cli, *args], env=env, capture_output=True, text=True, timeout=120)


def stream_events(fleet: Fleet, name: str) -> list[dict]:
    client = redis_client(Settings(CELERY_BROKER_URL=fleet.redis.url))
    return [event_from_fields(fields) for _, fields in client.xrange(RedisKeys().events(name))]


def test_counts_and_events_of_a_stream_reach_every_consumer_and_survive_a_detector_replaced(
    fleet: Fleet, vidfleet_cli: list[str], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    fleet.add_capture("cap1")
    first = fleet.add_live_detector("live1", model=BUNDLED_MODEL, lease_ttl=LEASE_TTL)
    config = tmp_path / "counting.json"
    config.write_text(json.dumps(COUNTING))
    added = cli(fleet, vidfleet_cli, "streams", "add", "yard", "yard.mp4", "--fps", "15", "--loop", "--policy", "all",
                "--config", str(config), "--webhook", receiver.url, "--max-events", "5000")
    assert added.returncode == 0, added.stderr

    # Every track enters the frame-sized zone: events flow within seconds of the first frames.
    wait_for(lambda: len(stream_events(fleet, "yard")) >= 8, timeout=120, what=f"counting events\n{fleet.logs()}", interval=0.3)
    status = fleet.coordinator.api("GET", "/streams/yard").json()
    assert status["counts"]["zones"]["yard"]["entries"] >= 1 and status["counting_error"] is None
    assert set(status["counts"]["lines"]) == {"gate", "belt"} and status["spec"]["webhook"] == receiver.url

    tail = cli(fleet, vidfleet_cli, "events", "tail", "yard", "--no-follow", "--last", "5")
    tailed = [json.loads(line) for line in tail.stdout.splitlines()]
    assert tail.returncode == 0 and len(tailed) == 5, tail.stderr
    assert all(e["stream"] == "yard" and e["kind"] in ("cross", "enter", "exit") and e["id"] for e in tailed)
    listing = cli(fleet, vidfleet_cli, "streams", "ls")
    assert listing.returncode == 0 and "gate: in " in listing.stdout and "yard: " in listing.stdout and "entries" in listing.stdout, listing.stdout

    wait_for(lambda: len(receiver.events()) >= 8, timeout=60, what=f"the webhook called\n{first.output()[-3000:]}", interval=0.3)

    # The detector dies mid-stream; a new one takes the stream over and continues the counts.
    before = stream_events(fleet, "yard")
    fleet.add_live_detector("live2", model=BUNDLED_MODEL, lease_ttl=LEASE_TTL)
    first.kill()
    wait_for(lambda: len(stream_events(fleet, "yard")) >= len(before) + 15, timeout=120,
             what=f"events after the handover\n{fleet.logs()}", interval=0.5)
    wait_for(lambda: fleet.coordinator.api("GET", "/streams/yard").json()["detector"] not in (None, status["detector"]),
             timeout=30, what="the new holder", interval=0.3)
    after = stream_events(fleet, "yard")
    assert after[: len(before)] == before
    assert [e["n"] for e in after] == list(range(1, len(after) + 1)), "numbered without a repeat or a gap"
    keyed = [(e["kind"], e.get("line") or e.get("zone"), e["track_id"], e["seq"], e["ts"]) for e in after]
    assert len(keyed) == len(set(keyed)), "no event counted twice"
    # The counts are committed with the events: read at one instant (MULTI), they are the events tallied.
    client = redis_client(Settings(CELERY_BROKER_URL=fleet.redis.url))
    pipe = client.pipeline(transaction=True)
    pipe.hget(RedisKeys().counting_state("yard"), "counts")
    pipe.xrange(RedisKeys().events("yard"))
    raw_counts, entries = pipe.execute()
    counts, snapshot = Counts.model_validate_json(raw_counts), [event_from_fields(f) for _, f in entries]
    assert counts.zones["yard"].entries == sum(1 for e in snapshot if e["kind"] == "enter") > sum(1 for e in before if e["kind"] == "enter")
    assert counts.zones["yard"].exits == sum(1 for e in snapshot if e["kind"] == "exit")
    for name in ("gate", "belt"):
        assert sum(counts.lines[name].crossings.values()) == sum(1 for e in snapshot if e.get("line") == name)

    # The webhook: every event at least once, in order, never one it was not sent, across the handover.
    def delivered() -> bool:
        ids = [e["id"] for e in receiver.events()]
        return len(set(ids)) >= len(after)

    wait_for(delivered, timeout=60, what="the webhook caught up", interval=0.5)
    got = {e["id"]: e for e in receiver.events()}
    sent_n = sorted(e["n"] for e in got.values())
    assert sent_n[: len(after)] == list(range(1, len(after) + 1))

    removed = cli(fleet, vidfleet_cli, "streams", "rm", "yard")
    assert removed.returncode == 0
    wait_for(lambda: not client.exists(RedisKeys().counting_state("yard")), timeout=60, what="the counting state forgotten", interval=0.3)
    assert client.xlen(RedisKeys().events("yard")) >= len(after), "events are kept, like the tracks"
