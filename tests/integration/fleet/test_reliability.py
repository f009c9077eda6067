"""The failure matrix, with real processes: workers, the coordinator and Redis killed mid-job.

Each scenario runs its own fleet (redis-server, a coordinator, two detector workers), submits the
same 7 videos, breaks something while they run, and tallies the job the way an operator would:
submitted / succeeded / failed / lost (no result) / duplicated (run to the end more than once).
Lost and duplicated must be 0 wherever Redis kept its data.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fleet import TOKEN, Fleet, Worker
from tests.integration.fleet.conftest import JOB_CONFIG, leftover_temp_files
from tests.servers import wait_for

VIDEOS = ["long0", "long1", "long2", "clip0", "clip1", "clip2", "clip3"]
REDIS_PASSWORD = "fleet-pw-81d0"
WORKER_LOST_SECONDS = 6.0  # tests.fleet.fleet_env


@dataclass
class Tally:
    submitted: int
    succeeded: int
    failed: int
    lost: int
    duplicated: int

    def __str__(self) -> str:
        return f"submitted {self.submitted}, succeeded {self.succeeded}, failed {self.failed}, lost {self.lost}, duplicated {self.duplicated}"


def completed_runs(fleet: Fleet, job_id: str) -> Counter[str]:
    """Runs of each video that reached the end, from every worker's log (a restarted worker appends to its log)."""
    pattern = re.compile(rf"job {job_id} video (\S+): (succeeded|failed|cancelled),")
    logs = {w.log for w in fleet.workers}
    return Counter(m[1] for log in logs if log.exists() for m in pattern.finditer(log.read_text(errors="replace")))


def tally(fleet: Fleet, job_id: str, names: list[str]) -> Tally:
    job = fleet.coordinator.job(job_id)
    states = {v["name"]: v["state"] for v in job["videos"]}
    runs = completed_runs(fleet, job_id)
    return Tally(
        submitted=len(names),
        succeeded=sum(1 for n in names if states.get(n) == "succeeded"),
        failed=sum(1 for n in names if states.get(n) == "failed"),
        lost=sum(1 for n in names if states.get(n) not in {"succeeded", "failed", "cancelled"}),
        duplicated=sum(1 for n in names if runs[n] > 1),
    )


def assert_nothing_lost(fleet: Fleet, job: dict, scenario: str) -> Tally:
    finished = fleet.coordinator.wait_finished(job["job_id"], timeout=300)
    counts = tally(fleet, job["job_id"], VIDEOS)
    print(f"{scenario}: {counts}")
    assert finished["state"] == "succeeded", f"{scenario}: {counts}\n{fleet.logs()}"
    assert (counts.lost, counts.duplicated, counts.succeeded) == (0, 0, len(VIDEOS)), f"{scenario}: {counts}\n{fleet.logs()}"
    out_dir = Path(finished["out_dir"])
    result = json.loads((out_dir / "result.json").read_text())
    assert sorted(v["name"] for v in result["videos"]) == sorted(VIDEOS), "each video exactly once"
    for video in result["videos"]:
        rows = (out_dir / video["outputs"]["tracks"]).read_text().splitlines()
        assert len(rows) == video["track_rows"] > 0, video
        frames = [int(r.split(",")[0]) for r in rows]
        assert frames == sorted(frames) and frames[-1] <= video["frames"], "a tracks file written whole, by one run"
        assert video["frames"] == (240 if video["name"].startswith("long") else 40), video
    assert leftover_temp_files(out_dir) == []
    return counts


def running_on(fleet: Fleet, job_id: str, min_frames: int) -> dict | None:
    for video in fleet.coordinator.job(job_id)["videos"]:
        if video["state"] == "running" and video["frames"] >= min_frames and video["worker"]:
            return video
    return None


def worker_named(fleet: Fleet, hostname: str) -> Worker:
    return next(w for w in fleet.workers if isinstance(w, Worker) and w.hostname == hostname and w.alive)


def reconnects(exposition: str) -> float:
    found = re.search(r"^vidfleet_redis_reconnects_total (\S+)$", exposition, re.MULTILINE)
    return float(found[1]) if found else 0.0


def tracebacks(text: str) -> int:
    return text.count("Traceback (most recent call last)")


@pytest.fixture
def own_fleet(tmp_path: Path, fleet_videos: Path) -> Iterator[Fleet]:
    # The production visibility timeout (an hour): a killed worker's video must come back through the
    # coordinator's reaper, never through Redis's timeout. Redis with a password, as in production.
    running = Fleet.start(tmp_path, fleet_videos, workers=2, visibility_timeout=3600, redis_password=REDIS_PASSWORD)
    try:
        yield running
    finally:
        running.close()


def submit_all(fleet: Fleet, fleet_videos: Path) -> dict:
    return fleet.submit([str(fleet_videos / "long"), str(fleet_videos / "short")], JOB_CONFIG)


@pytest.mark.parametrize("replacement", ["new name", "same name"])
def test_worker_sigkilled_mid_video_and_replaced(own_fleet: Fleet, fleet_videos: Path, replacement: str) -> None:
    """A pod's container OOM-killed: kubelet restarts it in the same pod, under the same hostname."""
    fleet = own_fleet
    job = submit_all(fleet, fleet_videos)
    victim = wait_for(lambda: running_on(fleet, job["job_id"], 30), timeout=120, what="a video in progress", interval=0.05)
    worker = worker_named(fleet, victim["worker"])
    killed_run_files = [p for p in leftover_temp_files(Path(job["out_dir"])) if p.name.endswith(f"-{victim['name']}.tracks.txt")]
    assert killed_run_files, "the video in progress writes under temporary names"

    worker.kill()
    killed_at = time.monotonic()
    fleet.add_worker(worker.name if replacement == "same name" else f"{worker.name}-new")
    assert REDIS_PASSWORD not in fleet.logs(), "a secret in the logs"

    # The video comes back within the worker-lost time, not the visibility timeout (an hour).
    wait_for(
        lambda: (v := next(v for v in fleet.coordinator.job(job["job_id"])["videos"] if v["name"] == victim["name"]))["state"] != "running"
        or v["worker"] != victim["worker"] or v["frames"] < victim["frames"],
        timeout=WORKER_LOST_SECONDS + 60, what=f"{victim['name']} to be given back", interval=0.1,
    )
    redelivered_after = time.monotonic() - killed_at
    wait_for(lambda: not any(p.exists() for p in killed_run_files), timeout=15, what="the killed run's temporary files to go")
    assert "temporary files of the killed run removed" in fleet.coordinator.output(), fleet.coordinator.output()[-3000:]
    counts = assert_nothing_lost(fleet, job, f"worker SIGKILL, replacement with the {replacement}")
    print(f"  video given back {redelivered_after:.1f}s after the kill (worker-lost time {WORKER_LOST_SECONDS:.0f}s)")
    result = json.loads(Path(job["out_dir"], "result.json").read_text())
    retaken = next(v for v in result["videos"] if v["name"] == victim["name"])
    assert retaken["attempts"] == 2, retaken
    assert counts.duplicated == 0


def test_every_worker_killed_then_replaced(own_fleet: Fleet, fleet_videos: Path) -> None:
    fleet = own_fleet
    job = submit_all(fleet, fleet_videos)
    wait_for(lambda: fleet.coordinator.job(job["job_id"])["videos_running"] == 2, timeout=120, what="two videos running", interval=0.05)
    victims = [w for w in fleet.workers if isinstance(w, Worker)]
    for worker in victims:
        worker.kill()
    for worker in victims:
        fleet.add_worker(worker.name)  # the same pods, restarted

    assert_nothing_lost(fleet, job, "every worker SIGKILLed")


def test_sigterm_is_a_warm_shutdown_that_finishes_the_video_in_hand(own_fleet: Fleet, fleet_videos: Path) -> None:
    """What Kubernetes sends first: the worker stops taking tasks, finishes the video it has, exits 0.
    (The chart gives batch detectors an hour of termination grace for that.)"""
    fleet = own_fleet
    job = submit_all(fleet, fleet_videos)
    busy = wait_for(lambda: running_on(fleet, job["job_id"], 20), timeout=120, what="a video in progress", interval=0.05)
    worker = worker_named(fleet, busy["worker"])

    os.kill(worker.process.pid, signal.SIGTERM)
    assert worker.process.wait(timeout=120) == 0, worker.output()[-3000:]
    fleet.add_worker(f"{worker.name}-next")

    assert_nothing_lost(fleet, job, "worker SIGTERM")
    result = json.loads(Path(job["out_dir"], "result.json").read_text())
    in_hand = next(v for v in result["videos"] if v["name"] == busy["name"])
    assert in_hand["worker"] == busy["worker"] and in_hand["attempts"] == 1, "the video in hand was finished by the worker shutting down"
    assert tracebacks(worker.output()) == 0, worker.output()[-3000:]


def test_coordinator_killed_and_restarted_mid_job(own_fleet: Fleet, fleet_videos: Path) -> None:
    fleet = own_fleet
    job = submit_all(fleet, fleet_videos)
    wait_for(lambda: running_on(fleet, job["job_id"], 20), timeout=120, what="a video in progress", interval=0.05)

    fleet.coordinator.kill()
    time.sleep(3)  # videos finish while nobody finalises  # noqa: sleep is the outage itself
    fleet.coordinator.start()

    assert fleet.coordinator.job(job["job_id"])["videos_total"] == len(VIDEOS), "status works after the restart"
    assert_nothing_lost(fleet, job, "coordinator SIGKILL")


def test_redis_restarted_with_its_append_only_file(own_fleet: Fleet, fleet_videos: Path) -> None:
    fleet = own_fleet
    job = submit_all(fleet, fleet_videos)
    wait_for(lambda: running_on(fleet, job["job_id"], 20), timeout=120, what="a video in progress", interval=0.05)
    before = {w.log: tracebacks(w.output()) for w in fleet.workers}

    fleet.redis.restart(down_for=2.0)  # SIGKILL; what survives is the append-only file

    assert_nothing_lost(fleet, job, "Redis restart with AOF")
    for worker in fleet.workers:
        out = worker.output()
        assert tracebacks(out) == before[worker.log], f"{worker.name}: a reconnect logged as a crash:\n{out[-4000:]}"
        assert "lost its connection to Redis" in out, f"{worker.name}: the reconnect is not reported:\n{out[-3000:]}"
    assert tracebacks(fleet.coordinator.output()) == 0, fleet.coordinator.output()[-4000:]
    for worker in fleet.workers:
        assert reconnects(worker.metrics()) >= 1, f"{worker.name}: reconnect not counted"
    health = fleet.coordinator.api("GET", "/health").json()
    assert health["status"] == "ok" and len(health["queues"]["detect"]["workers"]) == 2, health
    again = fleet.submit([str(fleet_videos / "short" / "clip0.mp4")], JOB_CONFIG)
    assert fleet.coordinator.wait_finished(again["job_id"])["state"] == "succeeded"


def test_redis_restarted_without_persistence_fails_the_job_with_the_reason(
    tmp_path: Path, fleet_videos: Path, vidfleet_cli: list[str]
) -> None:
    fleet = Fleet.start(tmp_path, fleet_videos, workers=2, redis_appendonly=False)
    try:
        config = tmp_path / "job.json"
        config.write_text(json.dumps(JOB_CONFIG))
        env = {**fleet.env, "VIDFLEET_SERVER": fleet.coordinator.url, "VIDFLEET_API_TOKEN": TOKEN}
        waiting = subprocess.Popen(
            [*vidfleet_cli, "submit", str(fleet_videos / "long"), str(fleet_videos / "short"), "--config", str(config), "--wait"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        job_id = wait_for(lambda: (jobs := fleet.coordinator.api("GET", "/jobs").json()) and jobs[0]["job_id"], timeout=60, what="the job")
        wait_for(lambda: running_on(fleet, job_id, 20), timeout=120, what="a video in progress", interval=0.05)
        warned = fleet.coordinator.output()
        assert warned.count("Redis has no persistence") == 1, warned[-3000:]

        fleet.redis.restart(down_for=1.0)  # everything in Redis is gone

        out, err = waiting.communicate(timeout=180)
        assert waiting.returncode == 1, out + err + fleet.logs()
        assert "lost its data" in out, out + err
        job = fleet.coordinator.job(job_id)  # not a 404: the coordinator still knew the job
        counts = tally(fleet, job_id, VIDEOS)
        print(f"Redis restart without persistence: {counts}, job {job['state']}: {job['message']}")
        assert job["state"] == "failed" and "lost its data" in job["message"], job
        assert counts.duplicated == 0
        health = fleet.coordinator.api("GET", "/health").json()
        assert health["status"] == "degraded" and "lost its data" in health["error"], health
        exported = fleet.coordinator.api("GET", "/metrics").text
        assert "vidfleet_redis_data_loss_total 1.0" in exported and "vidfleet_redis_persistent 0.0" in exported, exported
        assert Path(job["out_dir"], "result.json").exists(), "the failed job still gets its result.json"
        # the fleet goes on with new work
        again = fleet.submit([str(fleet_videos / "short" / "clip0.mp4")], JOB_CONFIG)
        assert fleet.coordinator.wait_finished(again["job_id"])["state"] == "succeeded", fleet.logs()
    finally:
        fleet.close()
