"""Jobs on a real fleet: submitted through the CLI and the HTTP API, shared by two workers, cancelled,
with bad inputs, and counted by the workers' and the coordinator's /metrics."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.fleet import TOKEN, Fleet
from tests.integration.fleet.conftest import JOB_CONFIG, leftover_temp_files
from tests.servers import wait_for
from tests.videos import bad_inputs


def cli(fleet: Fleet, vidfleet_cli: list[str], *args: str, token: str = TOKEN, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**fleet.env, "VIDFLEET_SERVER": fleet.coordinator.url, "VIDFLEET_API_TOKEN": token}
    return subprocess.run([*vidfleet_cli, *args], env=env, capture_output=True, text=True, timeout=timeout)


def result_json(job: dict) -> dict:
    return json.loads(Path(job["out_dir"], "result.json").read_text())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def total(values: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in values.items() if n == name and all(dict(ls).get(k) == x for k, x in labels.items()))


def test_submit_wait_through_the_cli_gives_the_same_tracks_as_vidfleet_process(
    fleet: Fleet, fleet_videos: Path, vidfleet_cli: list[str], tmp_path: Path
) -> None:
    config = tmp_path / "job.json"
    config.write_text(json.dumps({**JOB_CONFIG, "visualize": True}))
    videos = [str(fleet_videos / "short" / "clip0.mp4"), str(fleet_videos / "short" / "clip1.mp4")]

    done = cli(fleet, vidfleet_cli, "submit", *videos, "--config", str(config), "--wait")

    assert done.returncode == 0, done.stdout + done.stderr + fleet.logs()
    assert "succeeded" in done.stdout and "result.json" in done.stdout
    job_id = done.stdout.split()[1].rstrip(":")
    result = result_json(fleet.coordinator.job(job_id))
    assert result["state"] == "succeeded" and result["success"] is True
    assert sorted(v["name"] for v in result["videos"]) == ["clip0", "clip1"]
    out_dir = Path(fleet.coordinator.job(job_id)["out_dir"])
    for video in result["videos"]:
        assert video["outcome"] == "succeeded" and video["frames"] == 40 and video["worker"]
        for kind in ("tracks", "detections", "annotated"):
            assert (out_dir / video["outputs"][kind]).stat().st_size > 0
    assert leftover_temp_files(out_dir) == []

    # The fleet runs the very function `vidfleet process` runs: same tracks, row for row.
    local = tmp_path / "local"
    embedded = subprocess.run(
        [*vidfleet_cli, "process", videos[0], "--config", str(config), "--out", str(local)], capture_output=True, text=True, timeout=300
    )
    assert embedded.returncode == 0, embedded.stderr
    assert (out_dir / "clip0.tracks.txt").read_text() == (local / "clip0.tracks.txt").read_text()


def test_http_api_needs_the_token_and_answers_status_list_and_errors(fleet: Fleet, fleet_videos: Path) -> None:
    api = fleet.coordinator.api
    assert api("GET", "/jobs", token=None).status_code == 401
    assert api("GET", "/jobs", token="wrong").status_code == 401
    assert api("GET", "/health", token=None).status_code == 200
    assert api("GET", "/metrics", token=None).status_code == 200
    assert "/jobs" in api("GET", "/openapi.json", token=None).json()["paths"]

    job = fleet.submit(["short/clip2.mp4"], JOB_CONFIG)  # relative to the input root
    assert job["state"] == "queued" and job["videos_total"] == 1
    finished = fleet.coordinator.wait_finished(job["job_id"])
    assert finished["state"] == "succeeded" and finished["videos_succeeded"] == 1 and finished["frames_done"] == 40
    assert finished["result_file"] == str(Path(finished["out_dir"]) / "result.json")
    assert job["job_id"] in [j["job_id"] for j in api("GET", "/jobs").json()]

    missing = api("GET", "/jobs/nosuchjob")
    assert missing.status_code == 404 and missing.json() == {"detail": "no job 'nosuchjob'"}
    escape = api("POST", "/jobs", json={"inputs": ["../../etc/passwd"], "config": JOB_CONFIG})
    assert escape.status_code == 403 and "outside the input roots" in escape.json()["detail"]
    os.symlink("/etc", fleet_videos / "link-out")
    link = api("POST", "/jobs", json={"inputs": ["link-out/hostname"], "config": JOB_CONFIG})
    assert link.status_code == 403 and "outside the input roots" in link.json()["detail"]
    scheme = api("POST", "/jobs", json={"inputs": ["file:///etc/passwd"], "config": JOB_CONFIG})
    assert scheme.status_code == 403 and "scheme 'file' is not allowed" in scheme.json()["detail"]
    typo = api("POST", "/jobs", json={"inputs": ["short/clip2.mp4"], "config": {"conf_threshold": 0.5}})
    assert typo.status_code == 400 and typo.json() == {"detail": "unknown config key 'conf_threshold'"}


def test_cli_shows_server_errors_as_one_line(fleet: Fleet, vidfleet_cli: list[str]) -> None:
    refused = cli(fleet, vidfleet_cli, "status", "nosuchjob")
    assert refused.returncode == 1 and refused.stderr.strip() == "Error: no job 'nosuchjob' (HTTP 404)"
    unauthorised = cli(fleet, vidfleet_cli, "jobs", token="wrong")
    assert unauthorised.returncode == 1 and "missing or wrong API token" in unauthorised.stderr
    assert len(unauthorised.stderr.strip().splitlines()) == 1
    health = cli(fleet, vidfleet_cli, "health")
    assert health.returncode == 0 and "status: ok" in health.stdout and "w1@test" in health.stdout, health.stdout


def test_good_and_bad_inputs_end_partial_with_every_reason_recorded(
    fleet: Fleet, fleet_videos: Path, vidfleet_cli: list[str], tmp_path: Path
) -> None:
    bad = bad_inputs(fleet_videos / "bad")
    job = fleet.submit([str(fleet_videos / "short" / "clip3.mp4"), *bad], JOB_CONFIG)
    finished = fleet.coordinator.wait_finished(job["job_id"])

    assert finished["state"] == "partial", finished
    result = result_json(finished)
    assert result["state"] == "partial" and result["success"] is False
    by_video = {v["video"]: v for v in result["videos"]}
    assert by_video[str(fleet_videos / "short" / "clip3.mp4")]["outcome"] == "succeeded"
    for source, fragment in bad.items():
        assert by_video[source]["outcome"] == "failed" and fragment in by_video[source]["error"], by_video[source]
    assert len(result["videos"]) == len(bad) + 1
    shown = cli(fleet, vidfleet_cli, "status", job["job_id"])
    assert shown.returncode == 0 and "partial" in shown.stdout and "file is empty (0 bytes)" in shown.stdout
    # `submit --wait` exits 1 unless every video succeeded: what makes a kubectl Job (`vidfleet job-manifest`) fail.
    empty = next(source for source, fragment in bad.items() if "file is empty" in fragment)
    config = tmp_path / "job.json"
    config.write_text(json.dumps(JOB_CONFIG))
    waited = cli(fleet, vidfleet_cli, "submit", empty, "--config", str(config), "--wait")
    assert waited.returncode == 1 and "failed" in waited.stdout and "file is empty (0 bytes)" in waited.stdout, waited.stdout


def test_two_workers_on_one_queue_share_a_job(fleet: Fleet, fleet_videos: Path) -> None:
    job = fleet.submit([str(fleet_videos / "long")], JOB_CONFIG)
    finished = fleet.coordinator.wait_finished(job["job_id"], timeout=300)
    assert finished["state"] == "succeeded", finished
    workers = {v["worker"] for v in result_json(finished)["videos"]}
    assert workers == {"w1@test", "w2@test"}, workers


def test_a_cancelled_job_stops_dispatching_and_ends_cancelled(fleet: Fleet, fleet_videos: Path, vidfleet_cli: list[str]) -> None:
    inputs = [str(fleet_videos / "long"), str(fleet_videos / "short")]  # 7 videos, two workers
    job = fleet.submit(inputs, JOB_CONFIG)
    wait_for(lambda: fleet.coordinator.job(job["job_id"])["frames_done"] > 0, timeout=120, what="a video to start", interval=0.1)

    cancelled = cli(fleet, vidfleet_cli, "cancel", job["job_id"])
    assert cancelled.returncode == 0 and "cancelling" in cancelled.stdout

    finished = fleet.coordinator.wait_finished(job["job_id"])
    assert finished["state"] == "cancelled"
    result = result_json(finished)
    assert result["state"] == "cancelled" and len(result["videos"]) == 7
    outcomes = [v["outcome"] for v in result["videos"]]
    assert outcomes.count("cancelled") >= 5, outcomes  # at most the two running videos could finish
    never_started = [v for v in result["videos"] if v["outcome"] == "cancelled" and v["frames"] == 0]
    assert len(never_started) >= 4, result["videos"]
    assert leftover_temp_files(Path(finished["out_dir"])) == []
    assert fleet.coordinator.api("GET", "/health").json()["queues"]["detect"]["in_flight"] == 0


def test_metrics_of_workers_and_coordinator_move_by_the_job(fleet: Fleet, fleet_videos: Path) -> None:
    def scrape() -> tuple[dict, dict]:
        workers: dict = {}
        for worker in fleet.workers:
            for key, value in samples(worker.metrics()).items():
                workers[key] = workers.get(key, 0.0) + value
        return workers, samples(fleet.coordinator.api("GET", "/metrics", token=None).text)

    wait_for(lambda: fleet.coordinator.api("GET", "/health").json()["queues"]["detect"]["in_flight"] == 0, timeout=60, what="an idle fleet")
    workers_before, coordinator_before = scrape()
    job = fleet.submit([str(fleet_videos / "short" / "clip0.mp4"), str(fleet_videos / "short" / "clip1.mp4"), str(fleet_videos / "nothing.mp4")], JOB_CONFIG)
    finished = fleet.coordinator.wait_finished(job["job_id"])
    assert finished["state"] == "partial"
    videos = result_json(finished)["videos"]
    workers_after, coordinator_after = scrape()

    def moved(before: dict, after: dict, name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    processed = sum(v["frames_processed"] for v in videos)
    assert processed == 80
    assert moved(workers_before, workers_after, "vidfleet_frames_processed_total") == processed
    assert moved(workers_before, workers_after, "vidfleet_frames_decoded_total") == processed
    assert moved(workers_before, workers_after, "vidfleet_videos_total", outcome="succeeded") == 2
    assert moved(workers_before, workers_after, "vidfleet_detections_total") == sum(v["detections"] for v in videos)
    batches = moved(workers_before, workers_after, "vidfleet_inference_seconds_count")
    assert batches == moved(workers_before, workers_after, "vidfleet_batch_size_count") and batches >= processed / 4
    assert moved(workers_before, workers_after, "vidfleet_batch_size_sum") == processed
    assert total(workers_after, "vidfleet_tasks_running") == 0

    assert moved(coordinator_before, coordinator_after, "vidfleet_jobs_submitted_total") == 1
    assert moved(coordinator_before, coordinator_after, "vidfleet_jobs_finished_total", state="partial") == 1
    assert moved(coordinator_before, coordinator_after, "vidfleet_job_videos_total", outcome="succeeded") == 2
    assert moved(coordinator_before, coordinator_after, "vidfleet_job_videos_total", outcome="failed") == 1
    assert total(coordinator_after, "vidfleet_workers_alive", queue="detect") == 2
    assert total(coordinator_after, "vidfleet_redis_up") == 1
    assert total(coordinator_after, "vidfleet_queue_depth", queue="detect") == 0
    assert total(coordinator_after, "vidfleet_jobs", state="partial") >= 2


def test_tasks_lists_workers_and_queued_work(fleet: Fleet, fleet_videos: Path, vidfleet_cli: list[str]) -> None:
    job = fleet.submit([str(fleet_videos / "long"), str(fleet_videos / "short")], JOB_CONFIG)  # 7 videos, 2 workers
    wait_for(lambda: fleet.coordinator.job(job["job_id"])["videos_running"] == 2, timeout=120, what="two running videos", interval=0.1)
    listing = fleet.coordinator.api("GET", "/tasks").json()
    shown = cli(fleet, vidfleet_cli, "tasks")

    assert set(listing["workers"]) == {"w1@test", "w2@test"}
    active = [t for w in listing["workers"].values() for t in w["active"]]
    assert 1 <= len(active) <= 2 and all(t["id"].startswith(job["job_id"] + ":") for t in active), active
    queued = listing["queued"]["detect"]
    assert queued and all(t["id"].startswith(job["job_id"] + ":") for t in queued)
    assert listing["queued_total"]["detect"] == len(queued)
    assert shown.returncode == 0, shown.stderr
    assert "w1@test" in shown.stdout and "w2@test" in shown.stdout and f"job {job['job_id']}" in shown.stdout
    assert fleet.coordinator.wait_finished(job["job_id"], timeout=300)["state"] == "succeeded"


def test_a_counting_job_on_the_fleet_writes_what_vidfleet_process_writes_and_sums_the_counts(
    fleet: Fleet, fleet_videos: Path, vidfleet_cli: list[str], tmp_path: Path
) -> None:
    counting = {
        **JOB_CONFIG,
        "lines": [{"name": "gate", "points": [[0.5, 0], [0.5, 1]]}],
        "zones": [{"name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
    }
    before = {}
    for worker in fleet.workers:
        for key, value in samples(worker.metrics()).items():
            before[key] = before.get(key, 0.0) + value
    videos = [str(fleet_videos / "short" / f"clip{i}.mp4") for i in range(4)]
    finished = fleet.coordinator.wait_finished(fleet.submit(videos, counting)["job_id"])
    assert finished["state"] == "succeeded", finished
    result, out_dir = result_json(finished), Path(finished["out_dir"])
    assert len({v["worker"] for v in result["videos"]}) == 2, "shared by both workers"
    entries = [v["counts"]["zones"]["all"]["entries"] for v in result["videos"]]
    assert all(entries) and result["counts"]["zones"]["all"]["entries"] == sum(entries)
    for direction in ("in", "out"):
        assert result["counts"]["lines"]["gate"]["crossings"][direction] == sum(v["counts"]["lines"]["gate"]["crossings"][direction] for v in result["videos"])

    # The fleet runs `vidfleet process`'s own function: the same events file, byte for byte.
    config = tmp_path / "job.json"
    config.write_text(json.dumps(counting))
    embedded = subprocess.run([*vidfleet_cli, "process", videos[1], "--config", str(config), "--out", str(tmp_path / "local"), "--quiet"],
                              capture_output=True, text=True, timeout=300)
    assert embedded.returncode == 0, embedded.stderr
    assert (out_dir / "clip1.events.jsonl").read_text() == (tmp_path / "local" / "clip1.events.jsonl").read_text() != ""
    local = json.loads((tmp_path / "local" / "result.json").read_text())
    assert local["videos"][0]["counts"] == next(v["counts"] for v in result["videos"] if v["name"] == "clip1")

    # The workers export the totals, with no per-video label.
    after = {}
    for worker in fleet.workers:
        for key, value in samples(worker.metrics()).items():
            after[key] = after.get(key, 0.0) + value
    assert total(after, "vidfleet_batch_zone_entries_total", zone="all") - total(before, "vidfleet_batch_zone_entries_total", zone="all") == sum(entries)
    crossed = sum(result["counts"]["lines"]["gate"]["crossings"].values())
    assert total(after, "vidfleet_batch_line_crossings_total", line="gate") - total(before, "vidfleet_batch_line_crossings_total", line="gate") == crossed
    labels = {label for (metric, ls) in after if metric.startswith(("vidfleet_batch_line", "vidfleet_batch_zone")) for label in dict(ls)}
    assert labels <= {"line", "zone", "direction", "class_name"}
