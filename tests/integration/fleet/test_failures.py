"""No lost work: a detector worker SIGKILLed in the middle of a video, and Redis restarted in the
middle of a job. Each test runs its own fleet, since it breaks it."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet import Fleet
from tests.integration.fleet.conftest import JOB_CONFIG, leftover_temp_files
from tests.servers import wait_for

REDIS_PASSWORD = "fleet-pw-81d0"


@pytest.fixture
def own_fleet(tmp_path: Path, fleet_videos: Path) -> Iterator[Fleet]:
    # The production visibility timeout (an hour): a killed worker's video must come back through the
    # coordinator's reaper (worker silent for VIDFLEET_WORKER_LOST_SECONDS), not through Redis's timeout.
    # Redis with a password, as in production: every process must carry it.
    running = Fleet.start(tmp_path, fleet_videos, workers=2, visibility_timeout=3600, redis_password=REDIS_PASSWORD)
    try:
        yield running
    finally:
        running.close()


def running_on(fleet: Fleet, job_id: str, min_frames: int) -> dict | None:
    """A video of the job in progress with at least `min_frames` read, with its worker."""
    for video in fleet.coordinator.job(job_id)["videos"]:
        if video["state"] == "running" and video["frames"] >= min_frames and video["worker"]:
            return video
    return None


def assert_complete_outputs(finished: dict, names: list[str]) -> dict:
    out_dir = Path(finished["out_dir"])
    result = json.loads((out_dir / "result.json").read_text())
    assert sorted(v["name"] for v in result["videos"]) == sorted(names), "each video exactly once"
    for video in result["videos"]:
        assert video["outcome"] == "succeeded", video
        rows = (out_dir / video["outputs"]["tracks"]).read_text().splitlines()
        assert len(rows) == video["track_rows"] > 0
        frames = [int(r.split(",")[0]) for r in rows]
        assert frames == sorted(frames) and frames[-1] <= video["frames"], "a tracks file written whole, in order"
        lines = (out_dir / video["outputs"]["detections"]).read_text().splitlines()
        assert len(lines) == video["detections"] and all(json.loads(line)["frame"] <= video["frames"] for line in lines)
    assert leftover_temp_files(out_dir) == []
    return result


def test_a_worker_killed_mid_video_loses_nothing(own_fleet: Fleet, fleet_videos: Path) -> None:
    fleet = own_fleet
    job = fleet.submit([str(fleet_videos / "long")], JOB_CONFIG)
    victim = wait_for(lambda: running_on(fleet, job["job_id"], 30), timeout=120, what="a video halfway", interval=0.05)
    worker = next(w for w in fleet.workers if w.hostname == victim["worker"])

    worker.kill()  # the whole pod: main process and pool child, no warm shutdown
    assert REDIS_PASSWORD not in fleet.logs(), "a secret in the logs"

    finished = fleet.coordinator.wait_finished(job["job_id"], timeout=240)
    assert finished["state"] == "succeeded", fleet.logs()
    result = assert_complete_outputs(finished, ["long0", "long1", "long2"])
    retaken = next(v for v in result["videos"] if v["name"] == victim["name"])
    assert retaken["worker"] != victim["worker"] and retaken["frames"] == 240


def test_redis_restart_mid_job_and_everyone_reconnects(own_fleet: Fleet, fleet_videos: Path) -> None:
    fleet = own_fleet
    job = fleet.submit([str(fleet_videos / "long"), str(fleet_videos / "short")], JOB_CONFIG)
    wait_for(lambda: running_on(fleet, job["job_id"], 20), timeout=120, what="a video in progress", interval=0.05)

    fleet.redis.restart(down_for=2.0)  # SIGKILL; what survives is the append-only file

    finished = fleet.coordinator.wait_finished(job["job_id"], timeout=300)
    assert finished["state"] == "succeeded", fleet.logs()
    assert_complete_outputs(finished, ["long0", "long1", "long2", "clip0", "clip1", "clip2", "clip3"])
    health = fleet.coordinator.api("GET", "/health").json()
    assert health["status"] == "ok" and len(health["queues"]["detect"]["workers"]) == 2, health
    # and the fleet still takes new work after the restart
    again = fleet.submit([str(fleet_videos / "short" / "clip0.mp4")], JOB_CONFIG)
    assert fleet.coordinator.wait_finished(again["job_id"])["state"] == "succeeded"


def test_sigterm_is_a_warm_shutdown_that_finishes_the_video_in_hand(own_fleet: Fleet, fleet_videos: Path) -> None:
    fleet = own_fleet
    job = fleet.submit([str(fleet_videos / "long")], JOB_CONFIG)
    busy = wait_for(lambda: running_on(fleet, job["job_id"], 20), timeout=120, what="a video in progress", interval=0.05)
    worker = next(w for w in fleet.workers if w.hostname == busy["worker"])

    os.kill(worker.process.pid, signal.SIGTERM)  # what Kubernetes sends first
    assert worker.process.wait(timeout=120) == 0, worker.output()[-3000:]

    finished = fleet.coordinator.wait_finished(job["job_id"], timeout=240)
    result = assert_complete_outputs(finished, ["long0", "long1", "long2"])
    in_hand = next(v for v in result["videos"] if v["name"] == busy["name"])
    assert in_hand["worker"] == busy["worker"], "the video in hand was finished by the worker shutting down"
