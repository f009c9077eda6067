"""A split video on the real fleet (redis-server, the coordinator with its finalizer and reaper, two
detector worker processes): one detect task per chunk, then the stitch task; a worker SIGKILLed while it
holds a chunk gives back that chunk alone; the files are those `vidfleet process` writes for the same
config, byte for byte, every frame once."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from tests.fleet import Fleet
from tests.integration.fleet.conftest import JOB_CONFIG, leftover_temp_files
from tests.servers import wait_for
from vidfleet_common.contracts import Queue, RedisKeys
from vidfleet_common.jobs import JobStore

pytestmark = pytest.mark.slow

# long0: 240 frames at 15 fps (16 s): 4 chunks of 4 s, each reading 1 s (or up to the keyframe before) earlier.
SPLIT_CONFIG = {**JOB_CONFIG, "split_seconds": 4.0, "split_overlap_seconds": 1.0}
DRAWN = {**SPLIT_CONFIG, "visualize": True}  # then: stitch, one render task per chunk's part, join
UNITS = [f"long0.chunk{i:03d}" for i in range(4)]


@pytest.fixture
def split_fleet(tmp_path: Path, fleet_videos: Path) -> Iterator[Fleet]:
    running = Fleet.start(tmp_path, fleet_videos, workers=2)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def embedded(vidfleet_cli: list[str], fleet_videos: Path, tmp_path: Path) -> Path:
    """The same video and config through `vidfleet process` (chunks in turn, in one process)."""
    config = tmp_path / "split.json"
    config.write_text(json.dumps(DRAWN))
    out = tmp_path / "embedded"
    done = subprocess.run([*vidfleet_cli, "process", str(fleet_videos / "long" / "long0.mp4"), "--config", str(config), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


def _frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    return frames


def _chunk_in_progress(store: JobStore, job_id: str, min_frames: int) -> tuple[str, str] | None:
    progress, holders = store.progress(job_id), store.holders(job_id)
    for unit in UNITS:
        if unit in holders and progress.get(unit, 0) >= min_frames:
            return unit, holders[unit].worker
    return None


def test_a_worker_killed_holding_a_chunk_redoes_that_chunk_only(split_fleet: Fleet, fleet_videos: Path, embedded: Path) -> None:
    fleet = split_fleet
    store = JobStore(redis.Redis.from_url(fleet.redis.url), RedisKeys())
    job = fleet.submit([str(fleet_videos / "long" / "long0.mp4")], DRAWN)
    job_id = job["job_id"]
    assert store.redis.zcard(store.keys.in_flight(Queue.DETECT)) == 4, "each chunk is in flight: KEDA scales on chunks"

    unit, hostname = wait_for(lambda: _chunk_in_progress(store, job_id, 20), timeout=120, what="a chunk in progress", interval=0.05)
    status = fleet.coordinator.job(job_id)["videos"][0]
    assert status["chunks"] == 4 and status["state"] == "running" and 0 < status["frames"] < 240, status
    victim = next(w for w in fleet.workers if getattr(w, "hostname", None) == hostname)
    victim.kill()
    killed_at = time.monotonic()
    fleet.add_worker(f"{victim.name}-new")

    finished = fleet.coordinator.wait_finished(job_id, timeout=300)
    assert finished["state"] == "succeeded", fleet.logs()
    out = Path(finished["out_dir"])
    video = json.loads((out / "result.json").read_text())["videos"][0]
    print(f"{unit} given back and redone; job done {time.monotonic() - killed_at:.1f}s after the kill; stitching {video['split']['boundaries']}")
    attempts = {f"long0.chunk{c['index']:03d}": c["attempts"] for c in video["split"]["chunks"]}
    assert attempts == {u: 2 if u == unit else 1 for u in UNITS}, attempts
    assert store.attempts(job_id)[unit] == 2
    assert video["frames"] == 240 and video["outcome"] == "succeeded"
    # The fleet's files are vidfleet process's: the same frames, each once, the same stitched ids.
    for suffix in (".tracks.txt", ".detections.jsonl"):
        assert (out / f"long0{suffix}").read_bytes() == (embedded / f"long0{suffix}").read_bytes(), suffix
    local = json.loads((embedded / "result.json").read_text())["videos"][0]
    assert [b for b in video["split"]["boundaries"]] == local["split"]["boundaries"]
    assert sorted(p.name for p in out.iterdir()) == ["long0.annotated.mp4", "long0.detections.jsonl", "long0.tracks.txt", "result.json"], \
        "chunk files left"
    fleet_frames, local_frames = _frames(out / "long0.annotated.mp4"), _frames(embedded / "long0.annotated.mp4")
    assert len(fleet_frames) == 240 and all(np.array_equal(a, b) for a, b in zip(fleet_frames, local_frames)), "parts drawn and joined alike"
    assert video["split"]["render_seconds"] > 0
    assert leftover_temp_files(out) == []
    assert store.redis.zcard(store.keys.in_flight(Queue.DETECT)) == 0


def test_a_failing_chunk_fails_the_video_naming_the_chunk_and_time(fleet: Fleet, fleet_videos: Path) -> None:
    """The video is shortened after it was planned (replaced under its name): its last chunk finds the end of
    the video early. With save_intermediate_results the chunks that succeeded keep their files."""
    from vidfleet_detector.synthetic import generate_video

    folder = fleet_videos / "split-fault"
    generate_video(folder / "cut.mp4", seed=60, frames=240, objects=3)
    shorter = generate_video(folder / "cut-short.mp4", seed=60, frames=150, objects=3)
    job = fleet.submit([str(folder / "cut.mp4")], {**SPLIT_CONFIG, "save_intermediate_results": True})
    shorter.video.replace(folder / "cut.mp4")  # chunks opened from now on read 150 frames
    finished = fleet.coordinator.wait_finished(job["job_id"], timeout=300)
    video = json.loads((Path(finished["out_dir"]) / "result.json").read_text())["videos"][0]
    print("failed:", video["error"])
    assert finished["state"] == "failed" and video["outcome"] == "failed", video
    # The first failing chunk, where and why (frames 120-180 of a video now 150 long), and that there was another.
    assert "cut.mp4: chunk 3/4 (00:00:08-00:00:12): the video ended at frame 150 of 180 (and 1 more chunks)" in video["error"], video["error"]
    kept = {c["index"]: c["outputs"] for c in video["split"]["chunks"] if c["outcome"] == "succeeded"}
    assert kept and all((Path(finished["out_dir"]) / o["tracks"]).exists() for o in kept.values())
    assert not (Path(finished["out_dir"]) / "cut.tracks.txt").exists()
