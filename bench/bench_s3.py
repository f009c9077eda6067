"""Object storage's cost: the same video from local disk and from an S3-compatible server (SeaweedFS on
loopback, the test suite's), through the same pipeline, in one run; prints frames/s of each and the ratios
(goal: s3 input >= 0.95x local), then the decoder's memory on a large object (flat: it is never downloaded).

  local        process_video(/path/video.mp4)         outputs to a folder
  s3 in        process_video(s3://bucket/video.mp4)   the decoder reads a presigned URL, ranged requests
  s3 in + out  the same, outputs staged and uploaded to s3://bucket/results/ (result of a fleet worker)

The three runs are alternated --rounds times; the median and the best of each are printed (on a shared
machine the best is the steadier figure: noise only ever slows a run down). The S3 server shares the
machine's cores with the pipeline here, which a cluster's object store does not. Every timing excludes model loading and includes a warm-up.
Usage: python bench/bench_s3.py [--frames 300] [--rounds 3] [--model M] [--device cpu] [--big-mb 256]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")

from tests.s3 import WeedServer  # noqa: E402
from vidfleet_common.inputs import VideoRef  # noqa: E402
from vidfleet_common.job_config import JobConfig  # noqa: E402
from vidfleet_detector.model_runner import ModelRunner, ensure_yolo_config_dir  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def big_video(path: Path, megabytes: int) -> Path:
    """Noise compresses badly (~80 kB a 640x480 frame in MPEG-4 Part 2): size grows with the frame count."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 480))
    rng = np.random.default_rng(3)
    noise = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(16)]
    i = 0
    while True:
        for _ in range(250):
            writer.write(noise[i % len(noise)] ^ np.uint8(i % 251))
            i += 1
        if path.stat().st_size >= megabytes * 1_000_000:
            break
    writer.release()
    return path


def decode_memory(source: str, display: str) -> tuple[int, float, float]:
    """(frames, RSS before opening in MB, peak RSS growth while decoding every frame in MB)."""
    from vidfleet_detector.decode import FrameReader

    before, peak, stop = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    frames = 0
    with FrameReader(source, display=display) as reader:
        for _ in reader:
            frames += 1
    stop.set()
    sampler.join()
    return frames, before, max(peak[0], rss_mb()) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="vidfleet-shapes-n.pt")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--big-mb", type=int, default=256, help="size of the large object for the memory check (0: skip)")
    args = parser.parse_args()
    ensure_yolo_config_dir()
    from vidfleet_detector.pipeline import process_video
    from vidfleet_detector.s3_output import process_to
    from vidfleet_detector.synthetic import generate_video

    with tempfile.TemporaryDirectory(prefix="vidfleet-bench-s3-") as tmp:
        work = Path(tmp)
        server = WeedServer(work / "s3").start()
        try:
            os.environ.update(server.env())
            generate_video(work / "bench.mp4", seed=901, frames=args.frames, objects=6)
            bucket = server.bucket("bench")
            server.client().upload_file(str(work / "bench.mp4"), bucket, "videos/bench.mp4")
            config = JobConfig(model=args.model, device=args.device)
            runner = ModelRunner(config)
            local_ref, s3_ref = VideoRef(str(work / "bench.mp4"), "bench"), VideoRef(f"s3://{bucket}/videos/bench.mp4", "bench")
            process_video(local_ref, config, runner, work / "warmup")  # warm-up: first model calls are slow
            runs: dict[str, list[float]] = {"local": [], "s3 in": [], "s3 in + out": []}
            for r in range(args.rounds):
                for label in runs:
                    if label == "local":
                        result = process_video(local_ref, config, runner, work / f"out-{r}")
                    elif label == "s3 in":
                        result = process_video(s3_ref, config, runner, work / f"out-s3-{r}")
                    else:
                        result = process_to(f"s3://{bucket}/results/{r}/", lambda folder: process_video(s3_ref, config, runner, folder))
                    if not result.ok:
                        sys.exit(f"{label}: {result.error}")
                    runs[label].append(result.frames / result.seconds)
            print(f"{args.frames} frames 640x480, model {args.model} on {args.device}, {args.rounds} rounds, "
                  f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; S3: SeaweedFS on loopback")
            local, local_best = statistics.median(runs["local"]), max(runs["local"])
            print(f"\n{'run':<16}{'fps (median)':>14}{'vs local':>10}{'fps (best)':>12}{'vs local':>10}   all rounds")
            for label, values in runs.items():
                fps, best = statistics.median(values), max(values)
                print(f"{label:<16}{fps:>14.1f}{fps / local:>9.3f}x{best:>12.1f}{best / local_best:>9.3f}x   {', '.join(f'{v:.1f}' for v in values)}")

            if args.big_mb:
                path = big_video(work / "big.mp4", args.big_mb)
                size = path.stat().st_size / 1e6
                server.client().upload_file(str(path), bucket, "videos/big.mp4")
                path.unlink()
                started = time.perf_counter()
                frames, before, growth = decode_memory(f"s3://{bucket}/videos/big.mp4", "big")
                seconds = time.perf_counter() - started
                print(f"\nlarge object: {size:.0f} MB, {frames} frames decoded from s3 in {seconds:.1f} s "
                      f"({size / seconds:.0f} MB/s); RSS {before:.0f} MB before, peak growth {growth:.1f} MB "
                      f"({100 * growth / size:.1f} % of the object)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
