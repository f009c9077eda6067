"""A fleet with no shared volume: inputs from a bucket, outputs to a bucket, a worker SIGKILLed mid-video.

Real processes: redis-server, the coordinator, two detector workers, and SeaweedFS as the S3 endpoint.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet import TOKEN, Fleet, Worker
from tests.integration.fleet.conftest import JOB_CONFIG
from tests.s3 import ADMIN_SECRET, WeedServer
from tests.servers import wait_for

pytestmark = pytest.mark.slow

VIDEOS = ["long/long0", "long/long1", "clip0", "clip1", "clip2"]


@pytest.fixture(scope="module")
def buckets(s3_server: WeedServer, fleet_videos: Path) -> tuple[str, str]:
    source, results = s3_server.bucket("videos"), s3_server.bucket("results")
    client = s3_server.client()
    for name in VIDEOS:
        folder = "long" if name.startswith("long") else "short"
        client.upload_file(str(fleet_videos / folder / f"{Path(name).name}.mp4"), source, f"cams/{name}.mp4")
    return source, results


@pytest.fixture(scope="module")
def s3_fleet(tmp_path_factory: pytest.TempPathFactory, s3_server: WeedServer, buckets: tuple[str, str], fleet_videos: Path) -> Iterator[Fleet]:
    source, results = buckets
    env = s3_server.env() | {"VIDFLEET_INPUT_BUCKETS": f"{source}/cams/", "VIDFLEET_OUTPUT_BUCKETS": results}
    running = Fleet.start(
        tmp_path_factory.mktemp("s3-fleet"), fleet_videos, workers=2, output_root=f"s3://{results}/jobs/", extra_env=env
    )
    try:
        yield running
    finally:
        running.close()


def completed_runs(fleet: Fleet, job_id: str) -> Counter[str]:
    pattern = re.compile(rf"job {job_id} video (\S+): (succeeded|failed|cancelled),")
    return Counter(m[1] for log in {w.log for w in fleet.workers} if log.exists() for m in pattern.finditer(log.read_text(errors="replace")))


def test_bucket_to_bucket_job_survives_a_worker_sigkilled_mid_video(s3_fleet: Fleet, s3_server: WeedServer, buckets: tuple[str, str]) -> None:
    fleet, (source, results) = s3_fleet, buckets
    job = fleet.submit([f"s3://{source}/cams/"], JOB_CONFIG)
    job_id = job["job_id"]
    assert job["out_dir"] == f"s3://{results}/jobs/{job_id}/"

    def long_video_in_progress() -> dict | None:
        return next((v for v in fleet.coordinator.job(job_id)["videos"] if v["state"] == "running" and v["frames"] >= 30 and v["name"].startswith("long")), None)

    victim = wait_for(long_video_in_progress, timeout=120, what="a long video in progress", interval=0.05)
    staging_before = set(Path(tempfile.gettempdir()).glob("vidfleet-staging-*"))
    assert staging_before, "a running video stages its outputs on the worker's disk"
    assert not s3_server.keys(results, f"jobs/{job_id}/{victim['name']}."), "nothing of a running video is in the bucket"
    worker = next(w for w in fleet.workers if isinstance(w, Worker) and w.hostname == victim["worker"] and w.alive)
    worker.kill()
    fleet.add_worker(f"{worker.name}-new")

    finished = fleet.coordinator.wait_finished(job_id, timeout=300)
    assert finished["state"] == "succeeded", fleet.logs()
    assert finished["result_file"] == f"s3://{results}/jobs/{job_id}/result.json"
    runs = completed_runs(fleet, job_id)
    assert all(runs[name] == 1 for name in VIDEOS), runs  # nothing run to the end twice

    result = json.loads(s3_server.read(results, f"jobs/{job_id}/result.json"))
    assert sorted(v["name"] for v in result["videos"]) == sorted(VIDEOS)
    expected = {f"jobs/{job_id}/result.json"}
    for video in result["videos"]:
        expected |= {f"jobs/{job_id}/{video['outputs']['tracks']}", f"jobs/{job_id}/{video['outputs']['detections']}"}
        rows = s3_server.read(results, f"jobs/{job_id}/{video['outputs']['tracks']}").decode().splitlines()
        assert len(rows) == video["track_rows"] > 0, video
        assert video["frames"] == (240 if video["name"].startswith("long") else 40), video
    assert set(s3_server.keys(results, f"jobs/{job_id}/")) == expected, "the outputs, once each, and nothing else"
    assert next(v for v in result["videos"] if v["name"] == victim["name"])["attempts"] == 2
    # The killed process's staging folder is removed by a live worker once its heartbeat is stale.
    wait_for(lambda: not set(Path(tempfile.gettempdir()).glob("vidfleet-staging-*")) & staging_before, timeout=30, what="stale staging folders to go")
    assert ADMIN_SECRET not in fleet.logs() and "Signature=" not in fleet.logs()
    assert ADMIN_SECRET not in fleet.coordinator.api("GET", f"/jobs/{job_id}").text


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        (["s3://{other}/cams/a.mp4"], "outside the input buckets"),
        (["s3://{source}/elsewhere/a.mp4"], "outside the input buckets"),
        (["s3://{source}/cams/../private/a.mp4"], "outside the input buckets"),
        (["s3://{source}/cams/clip0.mp4", "s3://{other}/x/"], "outside the input buckets"),
    ],
)
def test_a_submission_outside_the_buckets_is_refused_whole(
    s3_fleet: Fleet, buckets: tuple[str, str], inputs: list[str], reason: str
) -> None:
    source, results = buckets
    before = fleet_jobs = s3_fleet.coordinator.api("GET", "/jobs").json()
    filled = [i.format(source=source, other=results) for i in inputs]
    response = s3_fleet.coordinator.api("POST", "/jobs", json={"inputs": filled, "config": JOB_CONFIG})
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert reason in detail and "\n" not in detail
    assert s3_fleet.coordinator.api("GET", "/jobs").json() == fleet_jobs == before, "nothing recorded"


def test_submit_wait_with_missing_objects_fails_them_alone(
    s3_fleet: Fleet, buckets: tuple[str, str], vidfleet_cli: list[str], s3_server: WeedServer, tmp_path: Path
) -> None:
    source, results = buckets
    config = tmp_path / "job.json"
    config.write_text(json.dumps(JOB_CONFIG))
    inputs = [f"s3://{source}/cams/clip0.mp4", f"s3://{source}/cams/gone.mp4", f"s3://{source}/cams/nothing-here/"]
    env = {**s3_fleet.env, "VIDFLEET_SERVER": s3_fleet.coordinator.url, "VIDFLEET_API_TOKEN": TOKEN}
    done = subprocess.run([*vidfleet_cli, "submit", *inputs, "--config", str(config), "--wait"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"s3://{source}/cams/gone.mp4: no such object" in done.stdout + done.stderr
    assert f"s3://{source}/cams/nothing-here/: no video objects" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (job_key,) = [k for k in s3_server.keys(results, "jobs/") if k.endswith("/result.json") and "clip0.tracks" not in k and json.loads(s3_server.read(results, k))["state"] == "partial"]
    result = json.loads(s3_server.read(results, job_key))
    assert [v["outcome"] for v in result["videos"]] == ["succeeded", "failed", "failed"]


def test_config_shows_s3_settings_and_no_credentials(s3_fleet: Fleet, vidfleet_cli: list[str]) -> None:
    done = subprocess.run([*vidfleet_cli, "config"], capture_output=True, text=True, env=s3_fleet.env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "s3_endpoint_url" in done.stdout and "input_buckets" in done.stdout
    assert ADMIN_SECRET not in done.stdout + done.stderr and TOKEN not in done.stdout
