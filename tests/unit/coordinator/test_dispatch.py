"""Dispatch, cancel, status and the finalizer against a real redis-server (no workers needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vidfleet_common.contracts import Queue, RedisKeys
from vidfleet_common.errors import ConfigError, InputError
from vidfleet_common.fleet import detect_task_id, redis_client
from vidfleet_common.jobs import Holder, JobState, JobStore
from vidfleet_common.results import VideoOutcome, VideoResult
from vidfleet_common.settings import Settings
from vidfleet_coordinator.api import make_celery
from vidfleet_coordinator.dispatch import SubmissionRefused, cancel_job, confine_inputs, submit_job
from vidfleet_coordinator.finalizer import Finalizer
from vidfleet_coordinator.metrics import CoordinatorMetrics
from vidfleet_coordinator.status import job_status
from tests.servers import RedisServer


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "clips").mkdir(parents=True)
    for name in ("a.mp4", "b.mp4"):
        (root / "clips" / name).write_bytes(b"not decoded here")
    return root


@pytest.fixture
def settings(redis_server: RedisServer, inputs: Path, tmp_path: Path) -> Settings:
    prefix = f"t{os.urandom(3).hex()}:"
    return Settings(CELERY_BROKER_URL=redis_server.url, input_roots=[inputs], output_root=tmp_path / "out", key_prefix=prefix)


@pytest.fixture
def store(settings: Settings) -> JobStore:
    client = redis_client(settings)
    client.delete(Queue.DETECT.value)
    return JobStore(client, RedisKeys(settings.key_prefix))


def test_inputs_are_confined_to_the_roots(settings: Settings, inputs: Path, tmp_path: Path) -> None:
    assert confine_inputs(["clips/a.mp4"], settings) == [str(inputs / "clips" / "a.mp4")]
    assert confine_inputs(["https://cam.example/x.mp4"], settings) == ["https://cam.example/x.mp4"]
    with pytest.raises(SubmissionRefused, match=r"clips/\.\./\.\./x\.mp4: outside the input roots"):
        confine_inputs(["clips/../../x.mp4"], settings)
    (tmp_path / "secret.mp4").write_bytes(b"x")
    (inputs / "sneaky.mp4").symlink_to(tmp_path / "secret.mp4")
    with pytest.raises(SubmissionRefused, match="sneaky.mp4: outside the input roots"):
        confine_inputs(["sneaky.mp4"], settings)
    with pytest.raises(SubmissionRefused, match="URL scheme 'rtsp' is not allowed"):
        confine_inputs(["rtsp://user:pw@cam/stream"], settings)
    with pytest.raises(SubmissionRefused, match="no input roots"):
        confine_inputs(["clips/a.mp4"], settings.model_copy(update={"input_roots": []}))
    with pytest.raises(InputError, match="at least one input"):
        confine_inputs([], settings)


def test_s3_inputs_are_confined_to_the_input_buckets(settings: Settings) -> None:
    with pytest.raises(SubmissionRefused, match="s3:// inputs are disabled: the coordinator has no input buckets"):
        confine_inputs(["s3://videos/a.mp4"], settings)
    buckets = settings.model_copy(update={"input_buckets": ["videos/cams/"]})
    assert confine_inputs(["s3://videos/cams/a.mp4", "s3://videos/cams/north/"], buckets) == ["s3://videos/cams/a.mp4", "s3://videos/cams/north/"]
    for outside in ("s3://videos/other/a.mp4", "s3://elsewhere/cams/a.mp4", "s3://videos/cams/../x/a.mp4"):
        with pytest.raises(SubmissionRefused, match="outside the input buckets"):
            confine_inputs(["s3://videos/cams/a.mp4", outside], buckets)


def test_refused_url_never_shows_its_password(settings: Settings) -> None:
    with pytest.raises(SubmissionRefused) as refused:
        confine_inputs(["ftp://user:hunter2@host/v.mp4"], settings)
    assert "hunter2" not in str(refused.value)


def test_submit_records_the_job_and_sends_one_task_per_good_video(settings: Settings, store: JobStore) -> None:
    app = make_celery(settings)
    record = submit_job(store, app, settings, ["clips", "clips/missing.mp4"], {"model": "m.pt", "batch": 2})

    assert [v.name for v in record.videos] == ["a", "b", "missing"]
    assert store.get(record.job_id) == record and record.config["batch"] == 2
    messages = [json.loads(m) for m in store.redis.lrange(Queue.DETECT.value, 0, -1)]
    assert sorted(m["headers"]["id"] for m in messages) == [detect_task_id(record.job_id, n) for n in ("a", "b")]
    assert {m["content-type"] for m in messages} == {"application/json"}
    assert store.redis.zcard(store.keys.in_flight(Queue.DETECT)) == 2
    status = job_status(store, record)
    assert (status.videos_queued, status.videos_failed) == (2, 1)
    assert status.videos[2].error.endswith("missing.mp4: no such file or folder")


def test_submit_refuses_a_bad_config_before_recording_anything(settings: Settings, store: JobStore) -> None:
    with pytest.raises(ConfigError, match="config key 'batch': expected an integer"):
        submit_job(store, make_celery(settings), settings, ["clips"], {"batch": "four"})
    assert store.list_ids() == [] and store.redis.llen(Queue.DETECT.value) == 0


def test_finalizer_writes_result_json_once_every_video_has_a_result(settings: Settings, store: JobStore) -> None:
    record = submit_job(store, make_celery(settings), settings, ["clips"], {})
    metrics = CoordinatorMetrics(store, census=None)
    finalizer = Finalizer(store, metrics)
    out_dir = Path(record.out_dir)
    (out_dir / ".tmp-dead0000-a.tracks.txt").write_text("half")  # left by a killed worker

    store.video_finished(record.job_id, _result("a", VideoOutcome.SUCCEEDED))
    assert finalizer.run_once() == [] and store.get(record.job_id).state is JobState.RUNNING
    store.video_finished(record.job_id, _result("b", VideoOutcome.FAILED))
    assert finalizer.run_once() == [record.job_id]

    result = json.loads((out_dir / "result.json").read_text())
    assert result["state"] == "partial" and result["message"] == "1 of 2 videos succeeded, 1 failed"
    assert [v["name"] for v in result["videos"]] == ["a", "b"]
    assert not list(out_dir.glob(".tmp-*"))
    assert store.get(record.job_id).state is JobState.PARTIAL and store.active_ids() == []
    assert store.count_by_state()["partial"] == 1
    assert finalizer.run_once() == []  # finalised once
    exposition = metrics.exposition().decode()
    assert 'vidfleet_jobs_finished_total{state="partial"} 1.0' in exposition
    assert 'vidfleet_job_videos_total{outcome="failed"} 1.0' in exposition


def test_cancel_settles_queued_videos_and_the_job_ends_cancelled(settings: Settings, store: JobStore) -> None:
    app = make_celery(settings)
    record = submit_job(store, app, settings, ["clips"], {})
    store.video_started(record.job_id, "a", Holder("w1@host", "inc-1"))  # a is running, b still queued

    cancel_job(store, app, record)

    assert store.is_cancelled(record.job_id) and store.get(record.job_id).state is JobState.CANCELLING
    assert store.results(record.job_id)["b"].outcome is VideoOutcome.CANCELLED
    assert "a" not in store.results(record.job_id)  # the running video stops itself between batches
    store.video_finished(record.job_id, _result("a", VideoOutcome.CANCELLED))
    Finalizer(store).run_once()
    assert store.get(record.job_id).state is JobState.CANCELLED
    assert json.loads((Path(record.out_dir) / "result.json").read_text())["state"] == "cancelled"
    assert store.redis.zcard(store.keys.in_flight(Queue.DETECT)) == 0


def _result(name: str, outcome: VideoOutcome) -> VideoResult:
    return VideoResult(video=f"{name}.mp4", name=name, outcome=outcome, error=None if outcome is VideoOutcome.SUCCEEDED else "x")


def test_a_video_in_a_bucket_or_with_results_in_one_is_not_split(settings: Settings, store: JobStore, inputs: Path) -> None:
    app = make_celery(settings)
    split = {"model": "m.pt", "split_seconds": 3.0}
    from_bucket = settings.model_copy(update={"input_buckets": ["videos"]})
    record = submit_job(store, app, from_bucket, ["s3://videos/cams/long.mp4"], split)
    to_bucket = settings.model_copy(update={"output_root": "s3://results/jobs/"})
    second = submit_job(store, app, to_bucket, ["clips/a.mp4"], split)
    assert second.out_dir == f"s3://results/jobs/{second.job_id}/"
    for video in (record.videos[0], second.videos[0]):
        assert video.chunks == [] and video.warning.startswith("not split: splitting on the fleet needs"), video
