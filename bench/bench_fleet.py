"""The fleet's cost: the same 8 short videos through `vidfleet process` and through the fleet with one
and two CPU detector workers, in one run; prints videos/s, the ratios, and the dispatch overhead per
task (time in HTTP, Celery and Redis, not in the model).

  overhead per video = (wall time to the last video's result in Redis, 1 worker) - sum of the videos'
                       own processing seconds (decode + model + tracking + writes), divided by the videos.

A last run goes bucket to bucket (2 workers, SeaweedFS on loopback as the S3 endpoint, no shared folder).
The fleet's workers are warmed up (model loaded) before timing, as a running fleet is; the embedded
run's model loading is subtracted likewise. Target: overhead per video under 2 % of its processing time.

Then one long video (split_seconds, docs/splitting.md): whole on 1 worker vs split into chunks on 2
workers, each worker process limited to one CPU thread (OMP_NUM_THREADS=1: one worker, one accelerator,
as on a GPU fleet), wall time from submission to result.json, the speed-up (goal >= 1.7x on 2 workers)
and the stitching's cost (goal < 2 % of the processing time).
Usage: python bench/bench_fleet.py [--videos 8] [--frames 150] [--model vidfleet-shapes-n.pt]
                                   [--long-frames 1200] [--split-seconds 20] [--only many|split]
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
from tests.s3 import WeedServer  # noqa: E402
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


def fleet_run(
    folder: Path, input_root: Path, videos: list[Path], config: dict, workers: int, s3: WeedServer | None = None
) -> tuple[float, float, float]:
    """(seconds to the last result in Redis, seconds to the finalised job, sum of per-video seconds).

    With `s3`, bucket to bucket: the videos are read from a bucket and the results written to another."""
    inputs = [str(v) for v in videos]
    options: dict = {}
    if s3 is not None:
        source, results = s3.bucket("bench-in"), s3.bucket("bench-out")
        keys = s3.upload_tree(input_root, source)
        inputs = [f"s3://{source}/{k}" for k in keys if k.endswith(".mp4")]
        options = {"output_root": f"s3://{results}/jobs/", "extra_env": s3.env() | {"VIDFLEET_INPUT_BUCKETS": source}}
    fleet = Fleet.start(folder, input_root, workers=workers, **options)
    try:
        for _ in range(workers):  # warm every worker: one model load per worker process
            warm = fleet.submit(inputs[:workers], config)
            fleet.coordinator.wait_finished(warm["job_id"])
        import redis

        client = redis.Redis.from_url(fleet.redis.url)
        started = time.perf_counter()
        job = fleet.submit(inputs, config)
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


def one_video_on_fleet(folder: Path, input_root: Path, video: Path, warm: list[Path], config: dict, workers: int) -> tuple[float, dict]:
    """(seconds from submission to the finished job, the video's result)."""
    import json

    fleet = Fleet.start(folder, input_root, workers=workers)
    try:
        for _ in range(2):  # every worker process loads its model before the timing
            fleet.coordinator.wait_finished(fleet.submit([str(w) for w in warm[:workers]], config)["job_id"])
        started = time.perf_counter()
        job = fleet.submit([str(video)], config)
        finished = fleet.coordinator.wait_finished(job["job_id"], timeout=3600)
        seconds = time.perf_counter() - started
        result = json.loads((Path(finished["out_dir"]) / "result.json").read_text())["videos"][0]
        if result["outcome"] != "succeeded":
            sys.exit(f"long video failed: {result['error']}\n{fleet.logs()}")
        return seconds, result
    finally:
        fleet.close()


def split_bench(work: Path, frames: int, split_seconds: float, model: str) -> None:
    from vidfleet_detector.synthetic import generate_video

    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the workers (tests.fleet.fleet_env copies the environment)
    root = work / "long-input"
    video = generate_video(root / "long.mp4", seed=930, frames=frames, objects=5).video
    warm = [generate_video(root / "warm" / f"w{i}.mp4", seed=940 + i, frames=8, objects=2).video for i in range(2)]
    config = {"model": model, "device": "cpu"}
    split = {**config, "split_seconds": split_seconds, "split_overlap_seconds": 2.0}
    print(f"\none long video: {frames} frames (640x480, 15 fps, {frames / 15:.0f} s), model {model}, 1 CPU thread per worker")
    whole_s, whole = one_video_on_fleet(work / "fleet-whole", root, video, warm, config, workers=1)
    split_s, chunked = one_video_on_fleet(work / "fleet-split", root, video, warm, split, workers=2)
    info = chunked["split"]
    processing = sum(c["seconds"] for c in info["chunks"])
    lead_in = sum(c["frames_read"] - c["frames"] for c in info["chunks"])
    print(f"{'run':<34}{'seconds':>9}{'speed-up':>10}")
    print(f"{'whole, 1 worker':<34}{whole_s:>9.2f}{1.0:>9.2f}x")
    label = f"split {len(info['chunks'])} x {split_seconds:g} s, 2 workers"
    print(f"{label:<34}{split_s:>9.2f}{whole_s / split_s:>9.2f}x  (goal >= 1.7x)")
    print(f"lead-in frames decoded and run twice: {lead_in} of {frames} ({100 * lead_in / frames:.1f} %): "
          f"at best {2 / (1 + lead_in / frames):.2f}x on 2 workers")
    slowdown = processing / (frames + lead_in) / (whole["seconds"] / frames)
    print(f"a chunk frame took {slowdown:.2f}x the whole run's frame (> 1: the 2 workers share this machine's cores; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end)")
    print(f"stitching: {info['stitch_seconds'] * 1000:.0f} ms = {100 * info['stitch_seconds'] / processing:.2f} % of the chunks' "
          f"processing ({processing:.1f} s; goal < 2 %); boundaries {[(b['matched'], b['new'], b['ended']) for b in info['boundaries'][1:]]} "
          f"(matched, new, ended)")
    print(f"tracks: whole {whole['tracks']} ids / {whole['track_rows']} rows, split {chunked['tracks']} ids / {chunked['track_rows']} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=150, help="frames per video (150 = 10 s at 15 fps)")
    parser.add_argument("--model", default="vidfleet-shapes-n.pt")
    parser.add_argument("--long-frames", type=int, default=1200, help="frames of the long video (1200 = 80 s at 15 fps)")
    parser.add_argument("--split-seconds", type=float, default=20.0)
    parser.add_argument("--only", choices=["many", "split"], help="run only the many-videos or the split part")
    args = parser.parse_args()
    if args.only == "split":
        with tempfile.TemporaryDirectory(prefix="vidfleet-bench-split-") as tmp:
            split_bench(Path(tmp), args.long_frames, args.split_seconds, args.model)
        return
    config = {"model": args.model, "device": "cpu"}
    with tempfile.TemporaryDirectory(prefix="vidfleet-bench-fleet-") as tmp:
        work = Path(tmp)
        videos = make_videos(work / "input", args.videos, args.frames)
        print(f"{args.videos} videos x {args.frames} frames (640x480), model {args.model}, "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
        local_s, local_sum = embedded(videos, config, work / "embedded")
        one_last, one_final, one_sum = fleet_run(work / "fleet1", work / "input", videos, config, workers=1)
        two_last, two_final, two_sum = fleet_run(work / "fleet2", work / "input", videos, config, workers=2)
        s3 = WeedServer(work / "s3").start()
        try:
            s3_last, s3_final, s3_sum = fleet_run(work / "fleet-s3", work / "input", videos, config, workers=2, s3=s3)
        finally:
            s3.stop()

    n = args.videos
    print()
    print(f"{'run':<28}{'seconds':>9}{'videos/s':>10}{'vs process':>12}")
    for label, seconds in (
        ("vidfleet process", local_s),
        ("fleet, 1 worker", one_final),
        ("fleet, 2 workers", two_final),
        ("fleet, 2 workers, s3 -> s3", s3_final),
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
    print(f"bucket to bucket vs shared folder (2 workers): {two_final / s3_final:.2f}x "
          f"(per-video processing {s3_sum / n * 1000:.0f} ms vs {two_sum / n * 1000:.0f} ms)")
    if args.only != "many":
        with tempfile.TemporaryDirectory(prefix="vidfleet-bench-split-") as tmp:
            split_bench(Path(tmp), args.long_frames, args.split_seconds, args.model)


if __name__ == "__main__":
    main()
