"""The stream registry, its API-side validation and the reconciler, against a real redis-server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.servers import RedisServer
from vidfleet_common.contracts import Queue, RedisKeys, TaskName
from vidfleet_common.errors import ConfigError
from vidfleet_common.fleet import redis_client
from vidfleet_common.settings import Settings
from vidfleet_common.streams import CONSUMER_GROUP, StreamSpec
from vidfleet_coordinator.api import make_celery
from vidfleet_coordinator.dispatch import SubmissionRefused
from vidfleet_coordinator.metrics import CoordinatorMetrics
from vidfleet_coordinator.reconciler import Reconciler
from vidfleet_coordinator.streams import StreamExists, StreamRegistry, make_spec
from vidfleet_common.jobs import JobStore


@pytest.fixture
def settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    (tmp_path / "in").mkdir()
    return Settings(CELERY_BROKER_URL=redis_server.url, input_roots=[tmp_path / "in"], key_prefix=f"s{os.urandom(3).hex()}:")


@pytest.fixture
def registry(settings: Settings) -> StreamRegistry:
    client = redis_client(settings)
    client.delete(Queue.CAPTURE.value)
    return StreamRegistry(client, RedisKeys(settings.key_prefix))


def test_specs_are_validated_and_sources_confined(settings: Settings, tmp_path: Path) -> None:
    spec = make_spec({"name": "door", "source": "cams/door.mp4", "fps": 15}, settings)
    assert spec.source == str(tmp_path / "in" / "cams" / "door.mp4") and spec.maxlen() == 150
    assert make_spec({"name": "cam0", "source": "0"}, settings).source == "0"
    assert make_spec({"name": "gate", "source": "rtsp://u:p@cam/1"}, settings).source == "rtsp://u:p@cam/1"
    with pytest.raises(SubmissionRefused, match="URL scheme 'ftp' is not allowed for streams"):
        make_spec({"name": "x", "source": "ftp://cam/1"}, settings)
    with pytest.raises(SubmissionRefused, match="outside the input roots"):
        make_spec({"name": "x", "source": "../../etc/passwd"}, settings)
    with pytest.raises(ConfigError, match="stream field 'name'"):
        make_spec({"name": "Bad Name!", "source": "0"}, settings)
    with pytest.raises(ConfigError, match="stream field 'fps'"):
        make_spec({"name": "x", "source": "0", "fps": "fast"}, settings)
    with pytest.raises(ConfigError, match="unknown config key 'confidence'"):
        make_spec({"name": "x", "source": "0", "config": {"confidence": 0.5}}, settings)


def test_a_streams_counting_config_and_webhook_are_validated_when_added(settings: Settings) -> None:
    bowtie = {"zones": [{"name": "dock", "polygon": [[0, 0], [10, 10], [10, 0], [0, 10]]}]}
    with pytest.raises(ConfigError, match=r"^config key 'zones.0.polygon': a self-intersecting polygon"):
        make_spec({"name": "x", "source": "0", "config": bowtie}, settings)
    with pytest.raises(ConfigError, match="stream field 'webhook': a webhook is an http:// or https:// URL"):
        make_spec({"name": "x", "source": "0", "webhook": "ftp://hooks/1"}, settings)
    with pytest.raises(ConfigError, match="stream field 'max_events'"):
        make_spec({"name": "x", "source": "0", "max_events": 10}, settings)
    spec = make_spec({"name": "x", "source": "0", "webhook": "https://u:secret@hooks.example/x", "config": {"lines": [{"name": "gate", "points": [[0.5, 0], [0.5, 1]]}]}}, settings)
    assert spec.webhook == "https://u:secret@hooks.example/x" and spec.max_events == 10_000


def test_a_streams_counts_are_in_its_status_and_forgotten_with_it(registry: StreamRegistry) -> None:
    registry.add(StreamSpec(name="c", source="0", webhook="https://u:secret@hooks.example/c"))
    status = registry.status(registry.get("c"))
    assert status.counts is None and status.spec.webhook == "https://***@hooks.example/c", "the webhook's credentials are not shown"
    counts = {"lines": {"gate": {"crossings": {"in": 3, "out": 1}, "by_class": {}}}, "zones": {}}
    registry.redis.hset(registry.keys.counting_state("c"), mapping={"state": "{}", "counts": json.dumps(counts)})
    registry.redis.set(registry.keys.webhook_cursor("c"), "{}")
    registry.redis.xadd(registry.keys.events("c"), {"event": "{}"})
    assert registry.status(registry.get("c")).counts.lines["gate"].crossings == {"in": 3, "out": 1}
    registry.remove("c")
    assert registry.forget("c")
    assert not registry.redis.exists(registry.keys.counting_state("c"), registry.keys.webhook_cursor("c"))
    assert registry.redis.xlen(registry.keys.events("c")) == 1, "events are kept, like the tracks"


def test_a_camera_urls_credentials_are_shown_nowhere_in_its_status(registry: StreamRegistry) -> None:
    registry.add(StreamSpec(name="cam", source="rtsp://admin:hunter2@10.0.0.7/live"))
    status = registry.status(registry.get("cam"))
    assert "hunter2" not in status.model_dump_json()
    assert status.source == status.spec.source == "rtsp://***@10.0.0.7/live"
    assert registry.get("cam").source == "rtsp://admin:hunter2@10.0.0.7/live", "the capture still gets the real URL"


def test_add_list_remove(registry: StreamRegistry) -> None:
    registry.add(StreamSpec(name="a", source="0"))
    with pytest.raises(StreamExists, match="stream 'a' exists"):
        registry.add(StreamSpec(name="a", source="1"))
    registry.add(StreamSpec(name="b", source="1", fps=5))
    assert [s.name for s in registry.wanted()] == ["a", "b"]
    assert registry.status(registry.get("a")).state == "pending"
    assert registry.remove("a") and not registry.remove("a")
    assert registry.redis.exists(registry.keys.capture_stop("a"))
    assert [s.name for s in registry.wanted()] == ["b"]


def test_reconciler_starts_each_missing_capture_once_and_stops_unwanted_ones(registry: StreamRegistry, settings: Settings) -> None:
    reconciler = Reconciler(registry, make_celery(settings), identity="c1")
    registry.add(StreamSpec(name="cam", source="0", fps=10))
    assert reconciler.run_once(now=0)["started"] == ["cam"]
    assert reconciler.run_once(now=1)["started"] == []  # its task is still queued: not sent twice
    sent = [json.loads(m) for m in registry.redis.lrange(Queue.CAPTURE.value, 0, -1)]
    assert len(sent) == 1 and sent[0]["headers"]["task"] == TaskName.CAPTURE_STREAM.value
    assert registry.status(registry.get("cam")).state == "starting"

    keys = registry.keys
    registry.redis.hset(keys.capture_status("cam"), mapping={"state": "running", "worker": "cap1", "fps": 9.8})
    registry.redis.hset(keys.capture_status("ghost"), mapping={"state": "running", "worker": "cap1"})
    result = reconciler.run_once(now=2)
    assert result == {"started": [], "stopped": ["ghost"]}
    assert registry.redis.exists(keys.capture_stop("ghost")) and not registry.redis.exists(keys.capture_stop("cam"))
    assert Reconciler(registry, make_celery(settings), identity="c2").run_once(now=2) == {"started": [], "stopped": []}, "one leader"


def test_a_failing_source_is_retried_with_backoff_and_its_error_shown(registry: StreamRegistry, settings: Settings) -> None:
    reconciler = Reconciler(registry, make_celery(settings), identity="c1")
    registry.add(StreamSpec(name="dead", source="rtsp://127.0.0.1:9/none"))
    reconciler.run_once(now=0)
    keys = registry.keys
    registry.redis.delete(registry.starting_key("dead"))
    registry.redis.hset(keys.capture_status("dead"), mapping={"state": "failed", "error": "rtsp://127.0.0.1:9/none: could not open the URL"})
    reconciler.run_once(now=1)
    status = registry.status(registry.get("dead"))
    assert status.state == "failed" and "could not open the URL" in status.error and "attempt 1" in status.error
    registry.redis.delete(keys.capture_status("dead"))  # the failed status expired
    assert reconciler.run_once(now=5)["started"] == [], "not before the backoff"
    assert registry.status(registry.get("dead")).state == "failed", "the error stays visible meanwhile"
    assert reconciler.run_once(now=12)["started"] == ["dead"]


def test_fleet_metrics_count_streams(registry: StreamRegistry, settings: Settings) -> None:
    registry.add(StreamSpec(name="m1", source="0"))
    registry.add(StreamSpec(name="m2", source="1"))
    keys = registry.keys
    registry.redis.hset(keys.capture_status("m1"), "state", "running")
    registry.redis.xadd(keys.frames("m1"), {"seq": 0})
    registry.redis.xadd(keys.frames("m1"), {"seq": 1})
    registry.redis.xgroup_create(keys.frames("m1"), CONSUMER_GROUP, id="0")
    metrics = CoordinatorMetrics(JobStore(registry.redis, keys), census=None, streams=registry)
    text = metrics.exposition().decode()
    assert "vidfleet_streams_wanted 2.0" in text and "vidfleet_streams_capturing 1.0" in text
    assert 'vidfleet_stream_length{stream="m1"} 2.0' in text and 'vidfleet_stream_lag{stream="m1"} 2.0' in text
    assert "vidfleet_streams_lag_frames 2.0" in text


def test_a_stream_played_to_its_end_is_not_replayed(registry: StreamRegistry, settings: Settings) -> None:
    reconciler = Reconciler(registry, make_celery(settings), identity="c1")
    registry.add(StreamSpec(name="clip", source="0"))
    registry.redis.hset(registry.keys.capture_status("clip"), mapping={"state": "ended", "frames": 45})
    assert reconciler.run_once(now=0) == {"started": [], "stopped": []}
    assert registry.status(registry.get("clip")).state == "ended"
    registry.remove("clip")
    assert not registry.redis.exists(registry.keys.capture_status("clip"))


def test_a_removed_stream_is_forgotten_once_nothing_captures_or_tracks_it(registry: StreamRegistry, settings: Settings) -> None:
    reconciler = Reconciler(registry, make_celery(settings), identity="c1")
    keys, redis = registry.keys, registry.redis
    registry.add(StreamSpec(name="gone", source="0"))
    registry.add(StreamSpec(name="kept", source="1"))
    for name in ("gone", "kept"):
        redis.hset(keys.capture_status(name), mapping={"state": "running", "worker": "cap1"})
        redis.set(keys.capture_owner(name), "cap1")
        redis.set(keys.stream_lease(name), "live1")
        redis.hset(keys.detector_status(name), "fps", 9.5)
        redis.xadd(keys.frames(name), {"seq": 0})
        redis.xadd(keys.tracks(name), {"seq": 0})
    registry.remove("gone")

    assert reconciler.forget_removed() == [] and registry.removed() == ["gone"], "capturing: kept"
    redis.delete(keys.capture_owner("gone"))  # the capture saw the stop key and let go ...
    redis.hset(keys.capture_status("gone"), "state", "stopped")
    assert reconciler.forget_removed() == [], "... but the detector still holds the lease"
    redis.delete(keys.stream_lease("gone"))
    reconciler.run_once(now=0)

    assert registry.removed() == []
    for key in (keys.frames("gone"), keys.capture_status("gone"), keys.detector_status("gone")):
        assert not redis.exists(key), key
    assert redis.xlen(keys.tracks("gone")) == 1, "tracks are kept for applications"
    assert redis.exists(keys.capture_stop("gone")), "a capture task still queued must not start it again"
    assert all(redis.exists(key) for key in (keys.frames("kept"), keys.capture_status("kept"), keys.stream_lease("kept")))


def test_a_stream_added_again_is_not_forgotten(registry: StreamRegistry) -> None:
    keys, redis = registry.keys, registry.redis
    registry.add(StreamSpec(name="back", source="0"))
    redis.xadd(keys.frames("back"), {"seq": 0})
    registry.remove("back")
    registry.add(StreamSpec(name="back", source="0"))
    assert not registry.forget("back") and registry.removed() == []
    assert redis.xlen(keys.frames("back")) == 1
