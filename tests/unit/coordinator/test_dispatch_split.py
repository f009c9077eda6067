"""A split video through dispatch, the finalizer, status and cancel against a real redis-server: one task
per chunk (each in flight, keyed for the reaper), the stitch task sent once when every chunk has a result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.servers import RedisServer
from tests.videos import write_h264_numbered
from vidfleet_common.contracts import Queue, RedisKeys, TaskName
from vidfleet_common.fleet import detect_task_id, redis_client
from vidfleet_common.jobs import Holder, JobStore, in_flight_member
from vidfleet_common.results import VideoOutcome, VideoResult
from vidfleet_common.settings import Settings
from vidfleet_coordinator.api import make_celery
from vidfleet_coordinator.dispatch import cancel_job, submit_job
from vidfleet_coordinator.finalizer import Finalizer
from vidfleet_coordinator.status import job_status

SPLIT = {"model": "m.pt", "split_seconds": 3.0, "split_overlap_seconds": 1.0}
UNITS = [f"long.chunk00{i}" for i in range(3)]


@pytest.fixture
def settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    root = tmp_path / "in"
    root.mkdir()
    write_h264_numbered(root / "long.mp4", 95, fps=10, gop=10)  # 9.5 s: 3 chunks of 3 s (the last takes the rest)
    write_h264_numbered(root / "short.mp4", 40, fps=10, gop=10)  # 4 s: shorter than two chunks
    return Settings(CELERY_BROKER_URL=redis_server.url, input_roots=[root], output_root=tmp_path / "out", key_prefix=f"t{os.urandom(3).hex()}:")


@pytest.fixture
def store(settings: Settings) -> JobStore:
    client = redis_client(settings)
    client.delete(Queue.DETECT.value)
    return JobStore(client, RedisKeys(settings.key_prefix))


def _messages(store: JobStore) -> list[dict]:
    return [json.loads(m) for m in store.redis.lrange(Queue.DETECT.value, 0, -1)]


def _done(name: str) -> VideoResult:
    return VideoResult(video=name, name=name, outcome=VideoOutcome.SUCCEEDED, frames=30)


def test_one_task_per_chunk_then_one_stitch(settings: Settings, store: JobStore) -> None:
    app = make_celery(settings)
    record = submit_job(store, app, settings, ["long.mp4", "short.mp4"], SPLIT)
    long, short = record.videos
    assert [(c.start, c.end) for c in long.chunks] == [(0, 30), (30, 60), (60, 95)] and long.units() == UNITS
    assert short.chunks == [] and "shorter than two chunks" in short.warning
    ids = sorted(m["headers"]["id"] for m in _messages(store))
    assert ids == sorted([detect_task_id(record.job_id, u) for u in UNITS] + [detect_task_id(record.job_id, "short")])
    in_flight = store.redis.zrange(store.keys.in_flight(Queue.DETECT), 0, -1)
    assert sorted(m.decode() for m in in_flight) == sorted(in_flight_member(record.job_id, u) for u in [*UNITS, "short"])

    store.video_started(record.job_id, UNITS[1], Holder("w1@x", "inc-1"))
    lead_in = long.chunks[1].start - long.chunks[1].read_from  # 10 frames or more: from a keyframe
    store.video_progress(record.job_id, UNITS[1], lead_in + 15)
    status = job_status(store, record).videos[0]
    assert (status.state, status.frames, status.chunks, status.chunks_done, status.worker) == ("running", 15, 3, 0, "w1@x")

    finalizer = Finalizer(store, celery_app=app)
    for unit in UNITS[:2]:
        store.video_finished(record.job_id, _done(unit))
    finalizer.run_once()
    assert not any(m["headers"]["task"] == TaskName.STITCH_VIDEO.value for m in _messages(store)), "stitch before every chunk ended"
    store.video_finished(record.job_id, _done(UNITS[2]))
    finalizer.run_once()
    finalizer.run_once()
    stitches = [m for m in _messages(store) if m["headers"]["task"] == TaskName.STITCH_VIDEO.value]
    assert [m["headers"]["id"] for m in stitches] == [detect_task_id(record.job_id, "long")], "sent once, keyed like the video"
    assert store.redis.zscore(store.keys.in_flight(Queue.DETECT), in_flight_member(record.job_id, "long")) is not None
    assert job_status(store, record).videos[0].chunks_done == 3


def test_cancel_settles_the_chunks_nobody_runs(settings: Settings, store: JobStore) -> None:
    app = make_celery(settings)
    record = submit_job(store, app, settings, ["long.mp4"], SPLIT)
    store.video_started(record.job_id, UNITS[0], Holder("w1@x", "inc-1"))
    cancel_job(store, app, record)
    results = store.results(record.job_id)
    assert sorted(results) == UNITS[1:] and {r.outcome for r in results.values()} == {VideoOutcome.CANCELLED}
    assert store.redis.zcard(store.keys.in_flight(Queue.DETECT)) == 1  # the running chunk, until it stops


def _steps(store: JobStore) -> list[tuple[str, str]]:
    return [(m["headers"]["task"], m["headers"]["id"].split(":", 1)[1]) for m in _messages(store) if m["headers"]["task"] != TaskName.DETECT_VIDEO.value]


def test_with_visualize_the_parts_are_drawn_in_parallel_then_joined(settings: Settings, store: JobStore) -> None:
    app = make_celery(settings)
    record = submit_job(store, app, settings, ["long.mp4"], {**SPLIT, "visualize": True})
    finalizer = Finalizer(store, celery_app=app)
    for unit in UNITS:
        store.video_finished(record.job_id, _done(unit))
    finalizer.run_once()
    assert _steps(store) == [(TaskName.STITCH_VIDEO.value, "long.stitch")]
    store.video_finished(record.job_id, _done("long.stitch"))
    finalizer.run_once()
    renders = [(TaskName.RENDER_CHUNK.value, f"long.render00{i}") for i in range(3)]
    assert sorted(_steps(store)) == sorted([(TaskName.STITCH_VIDEO.value, "long.stitch"), *renders])
    for i in range(3):
        store.video_finished(record.job_id, _done(f"long.render00{i}"))
    finalizer.run_once()
    finalizer.run_once()
    assert (TaskName.JOIN_VIDEO.value, "long") in _steps(store) and len(_steps(store)) == 5, "each step sent once"


def test_a_failed_stitch_ends_the_video_without_drawing(settings: Settings, store: JobStore) -> None:
    app = make_celery(settings)
    record = submit_job(store, app, settings, ["long.mp4"], {**SPLIT, "visualize": True})
    for unit in UNITS:
        store.video_finished(record.job_id, _done(unit))
    failed = VideoResult(video="long", name="long.stitch", outcome=VideoOutcome.FAILED, error="chunk 2/3 (00:00:03-00:00:06): bad", error_kind="video")
    store.video_finished(record.job_id, failed)
    Finalizer(store, celery_app=app).run_once()
    Finalizer(store, celery_app=app).run_once()
    assert store.results(record.job_id)["long"].error == failed.error
    assert store.get(record.job_id).state.value == "failed"
