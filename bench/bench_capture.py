"""Capture throughput: vidfleet's capture against the plain loop it replaces, on the same videos and Redis.

  plain loop:  cap.read() -> cv2.imencode('.jpg', frame) -> redis.xadd(key, {...}, maxlen=10000) -> print(id)
  vidfleet:    capture(StreamSpec(..., realtime=False)) -- reader, encoder threads and a pipelined writer

Both encode JPEG at the same quality into a Redis stream with MAXLEN ~10000 (redis-py's xadd trims
approximately by default) on one redis-server (no persistence, so that the
disk is not what is measured). The plain loop prints every id to /dev/null. Each figure is the best
of --repeat runs (the runs alternate); frames/s counts frames appended, end to end.
Target: vidfleet >= 1.8x the plain loop on a 2-core machine.
Usage: python bench/bench_capture.py [--frames 300] [--repeat 3] [--quality 85] [--encoders 2]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import redis  # noqa: E402

from tests.servers import RedisServer  # noqa: E402
from vidfleet_capture.loop import capture  # noqa: E402
from vidfleet_common.contracts import RedisKeys  # noqa: E402
from vidfleet_common.streams import StreamSpec  # noqa: E402

SIZES = ((640, 480), (1280, 720))
MAXLEN = 10_000


def plain_loop(video: Path, client: redis.Redis, key: str, quality: int) -> int:
    """The loop vidfleet replaces, as it was: one frame at a time, one round trip and one print per frame."""
    cap = cv2.VideoCapture(str(video))
    frames = 0
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            _, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            message_id = client.xadd(
                key, {"frame": buffer.tobytes(), "ts": time.time_ns(), "seq": frames}, maxlen=MAXLEN
            )
            print(message_id)
            frames += 1
    cap.release()
    return frames


def vidfleet_capture(video: Path, client: redis.Redis, name: str, quality: int, encoders: int) -> int:
    spec = StreamSpec(name=name, source=str(video), realtime=False, quality=quality)
    result = capture(spec, client, RedisKeys("bench:"), worker="bench", maxlen=MAXLEN, encoders=encoders)
    if result.state != "ended":
        sys.exit(f"vidfleet capture failed: {result.error or result.reason}")
    return result.frames


def timed(run, client: redis.Redis, key: str) -> tuple[float, int]:
    client.delete(key)
    started = time.perf_counter()
    frames = run()
    seconds = time.perf_counter() - started
    if client.xlen(key) != frames:
        sys.exit(f"{key}: {client.xlen(key)} entries for {frames} frames")
    client.delete(key)
    return seconds, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of both loops (95: cv2.imencode's default, what the plain loop used)")
    parser.add_argument("--encoders", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    cv2.setNumThreads(1)  # as `vidfleet-capture worker` does; the plain loop uses no OpenCV pool either way
    from vidfleet_detector.synthetic import generate_video

    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        folder = Path(tmp)
        server = RedisServer(folder / "redis", appendonly=False).start()
        try:
            client = redis.Redis.from_url(server.url)
            load = os.getloadavg()[0]
            print(f"capture benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                  f"load average {load:.2f} at start, OpenCV {cv2.__version__}, quality {args.quality}, {args.encoders} encoders")
            print(f"{'video':>10} {'frames':>6} {'plain loop f/s':>15} {'vidfleet f/s':>13} {'ratio':>6}  (best of {args.repeat}; median ratio)")
            ratios = []
            for width, height in SIZES:
                video = generate_video(folder / f"v{width}x{height}.mp4", seed=7, frames=args.frames, width=width, height=height, fps=15.0, objects=5).video
                plain_rates, ours_rates = [], []
                for _ in range(args.repeat):
                    seconds, frames = timed(lambda: plain_loop(video, client, "bench:plain", args.quality), client, "bench:plain")
                    plain_rates.append(frames / seconds)
                    seconds, frames = timed(
                        lambda: vidfleet_capture(video, client, "cam", args.quality, args.encoders), client, "bench:frames:cam"
                    )
                    ours_rates.append(frames / seconds)
                    client.delete("bench:capture:cam")
                best_plain, best_ours = max(plain_rates), max(ours_rates)
                median_ratio = statistics.median(o / p for o, p in zip(ours_rates, plain_rates))
                ratios.append(best_ours / best_plain)
                print(f"{width}x{height:<5} {frames:>6} {best_plain:>15.0f} {best_ours:>13.0f} {best_ours / best_plain:>5.2f}x"
                      f"  (median {median_ratio:.2f}x)")
            print(f"load average {os.getloadavg()[0]:.2f} at the end; target >= 1.8x: "
                  + ("met" if min(ratios) >= 1.8 else "NOT met") + f" (lowest {min(ratios):.2f}x)")
        finally:
            server.kill()


if __name__ == "__main__":
    main()
