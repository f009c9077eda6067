"""The fleet's cost: the same 8 short videos through `vidfleet process` and through the fleet with one
and two CPU detector workers, in one run; prints videos/s, the ratios, and the dispatch overhead per
task (time in HTTP, Celery and Redis, not in the model).

  overhead per video = (wall time to the last video's result in Redis, 1 worker) - sum of the videos'
                       own processing seconds (decode + model + tracking + writes), divided by the videos.

The fleet's workers are warmed up (model loaded) before timing, as a running fleet is; the embedded
run's model loading is subtracted likewise. Target: overhead per video under 2 % of its processing time.
Usage: python bench/bench_fleet.py [--videos 8] [--frames 150] [--model vidfleet-shapes-n.pt]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")

from tests.fleet import Fleet  # noqa: E402
from vidfleet_common.contracts import RedisKeys  # noqa: E402
from vidfleet_common.job_config import JobConfig  # noqa: E402
from vidfleet_common.results import VideoResult  # noqa: E402
from vidfleet_detector.job import run_job  # noqa: E402


def make_videos(folder: Path, count: int, frames: int) -> list[Path]:
    from vidfleet_detector.synthetic import generate_video

    return [generate_video(folder / f"v{i}.mp4", seed=910 + i, frames=frames, objects=5).video for i in range(count)]


def embedded(videos: list[Path], config: dict, out: Path) -> tuple[float, float]:
    """(seconds for all videos without model loading, sum of per-video seconds)."""
    result = run_job([str(v) for v in videos], JobConfig.from_mapping(config), out)
    if result.state != "succeeded":
        sys.exit(f"vidfleet process failed: {result.message}")
    return result.timings["total_s"] - result.timings["model_load_s"], sum(v.seconds for v in result.videos)


def fleet_run(folder: Path, input_root: Path, videos: list[Path], config: dict, workers: int) -> tuple[float, float, float]:
    """(seconds to the last result in Redis, seconds to the finalised job, sum of per-video seconds)."""
    fleet = Fleet.start(folder, input_root, workers=workers)
    try:
        for _ in range(workers):  # warm every worker: one model load per worker process
            warm = fleet.submit([str(v) for v in videos[:workers]], config)
            fleet.coordinator.wait_finished(warm["job_id"])
        import redis

        client = redis.Redis.from_url(fleet.redis.url)
        started = time.perf_counter()
        job = fleet.submit([str(v) for v in videos], config)
        store_key = RedisKeys().job_results(job["job_id"])
        while client.hlen(store_key) < len(videos):
            time.sleep(0.002)
        last_result = time.perf_counter() - started
        fleet.coordinator.wait_finished(job["job_id"])
        finalised = time.perf_counter() - started
        results = [VideoResult.model_validate_json(v) for v in client.hvals(store_key)]
        if any(not r.ok for r in results):
            sys.exit(f"fleet run failed: {[r.error for r in results if not r.ok]}\n{fleet.logs()}")
        return last_result, finalised, sum(r.seconds for r in results)
    finally:
        fleet.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=150, help="frames per video (150 = 10 s at 15 fps)")
    parser.add_argument("--model", default="vidfleet-shapes-n.pt")
    args = parser.parse_args()
    config = {"model": args.model, "device": "cpu"}
    with tempfile.TemporaryDirectory(prefix="vidfleet-bench-fleet-") as tmp:
        work = Path(tmp)
        videos = make_videos(work / "input", args.videos, args.frames)
        print(f"{args.videos} videos x {args.frames} frames (640x480), model {args.model}, "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
        local_s, local_sum = embedded(videos, config, work / "embedded")
        one_last, one_final, one_sum = fleet_run(work / "fleet1", work / "input", videos, config, workers=1)
        two_last, two_final, two_sum = fleet_run(work / "fleet2", work / "input", videos, config, workers=2)

    n = args.videos
    print()
    print(f"{'run':<28}{'seconds':>9}{'videos/s':>10}{'vs process':>12}")
    for label, seconds in (
        ("vidfleet process", local_s),
        ("fleet, 1 worker", one_final),
        ("fleet, 2 workers", two_final),
    ):
        print(f"{label:<28}{seconds:>9.2f}{n / seconds:>10.3f}{local_s / seconds:>11.2f}x")
    per_video = one_sum / n
    overhead = (one_last - one_sum) / n
    print()
    print(f"processing per video (1 worker):   {per_video * 1000:8.1f} ms")
    print(f"dispatch overhead per video:       {overhead * 1000:8.1f} ms  = {100 * overhead / per_video:.2f} % (target < 2 %)")
    print(f"finalize latency (last result -> result.json): {(one_final - one_last) * 1000:.0f} ms (1 worker), "
          f"{(two_final - two_last) * 1000:.0f} ms (2 workers)")
    print(f"2 workers vs 1: {one_final / two_final:.2f}x")


if __name__ == "__main__":
    main()
