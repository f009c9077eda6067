"""Live capacity: with N streams of 640x480 at 15 fps, does one live detector keep up (p99 latency
under 1 s, nothing skipped)? Runs N = 1, 2, 3, ... until it does not, and prints the latency
distribution (capture timestamp to tracks appended) for each N.

The streams are fed by a paced feeder that appends pre-encoded JPEG frames at 15 fps per stream
(what capture workers do, without their decoding cost on this machine); the detector is the real
`vidfleet-detector live` process with policy `all`, so falling behind shows as growing latency.
Usage: python bench/bench_live.py [--seconds 20] [--max-streams 12] [--model vidfleet-shapes-n.pt] [--batch 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import redis as redis_py  # noqa: E402

from tests.fleet import BIN  # noqa: E402
from tests.servers import RedisServer, free_port, wait_for  # noqa: E402
from vidfleet_common.contracts import RedisKeys  # noqa: E402
from vidfleet_common.streams import FrameMessage, StreamSpec, TrackMessage  # noqa: E402

FPS = 15.0


def jpeg_frames(folder: Path, frames: int) -> list[bytes]:
    from vidfleet_detector.synthetic import generate_video

    video = generate_video(folder / "live.mp4", seed=930, frames=frames, objects=6).video
    capture, encoded = cv2.VideoCapture(str(video)), []
    while True:
        ok, image = capture.read()
        if not ok:
            return encoded
        encoded.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())


def feed(client: redis_py.Redis, keys: RedisKeys, name: str, frames: list[bytes], seconds: float, stop: threading.Event) -> None:
    started, seq = time.monotonic(), 0
    maxlen = StreamSpec(name=name, source="0", fps=FPS, retention_seconds=seconds + 30).maxlen()
    while not stop.is_set() and time.monotonic() - started < seconds:
        due = started + seq / FPS
        time.sleep(max(0.0, due - time.monotonic()))
        message = FrameMessage(seq, time.time_ns(), 640, 480, "jpg", frames[seq % len(frames)])
        client.xadd(keys.frames(name), message.fields(), maxlen=maxlen, approximate=True)
        seq += 1


def run(n: int, args: argparse.Namespace, redis_url: str, frames: list[bytes], log: Path) -> dict[str, float]:
    client = redis_py.Redis.from_url(redis_url)
    client.flushall()
    keys = RedisKeys()
    for i in range(n):
        # retention covers the whole run, so the tracks stream still holds every frame's tracks at the end
        spec = StreamSpec(name=f"cam{i}", source="0", fps=FPS, policy="all", retention_seconds=args.seconds + 30)
        client.hset(keys.stream_registry(), spec.name, spec.model_dump_json())
    env = {**os.environ, "CELERY_BROKER_URL": redis_url}
    detector = subprocess.Popen(
        [str(BIN / "vidfleet-detector"), "live", "--model", args.model, "--batch", str(args.batch), "--device", "cpu",
         "--metrics-port", str(free_port()), "--lease-ttl", "6"],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: all(client.exists(keys.stream_lease(f"cam{i}")) for i in range(n)), timeout=90, what="leases")
        stop = threading.Event()
        feeders = [threading.Thread(target=feed, args=(client, keys, f"cam{i}", frames, args.seconds, stop)) for i in range(n)]
        for t in feeders:
            t.start()
        for t in feeders:
            t.join()
        time.sleep(2.0)  # let the detector finish what it can
        latencies, sent, done = [], 0, 0
        for i in range(n):
            messages = [TrackMessage.from_fields(f) for _, f in client.xrange(keys.tracks(f"cam{i}"))]
            latencies += [(m.pts - m.ts) / 1e9 for m in messages]
            done += len(messages)
            sent += client.xlen(keys.frames(f"cam{i}"))
        q = np.percentile(latencies, [50, 90, 99, 100]) if latencies else [float("nan")] * 4
        return {"streams": n, "sent": sent, "done": done, "p50": q[0], "p90": q[1], "p99": q[2], "max": q[3]}
    finally:
        detector.terminate()
        detector.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-streams", type=int, default=12)
    parser.add_argument("--model", default="vidfleet-shapes-n.pt")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidfleet-bench-live-") as tmp:
        work = Path(tmp)
        frames = jpeg_frames(work, 150)
        server = RedisServer(work / "redis", appendonly=False).start()
        try:
            print(f"streams of 640x480 JPEG at {FPS:.0f} fps, {args.seconds:.0f} s each run, model {args.model}, batch {args.batch}, {os.cpu_count()} cores")
            print(f"{'streams':>7} {'frames in':>9} {'tracked':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}  keeps up")
            best = 0
            for n in range(1, args.max_streams + 1):
                r = run(n, args, server.url, frames, work / "detector.log")
                ok = r["p99"] < 1.0 and r["done"] >= 0.98 * r["sent"]
                print(f"{n:>7} {r['sent']:>9} {r['done']:>8} {1000 * r['p50']:>8.0f} {1000 * r['p90']:>8.0f} {1000 * r['p99']:>8.0f} {1000 * r['max']:>8.0f}  {'yes' if ok else 'no'}", flush=True)
                if not ok:
                    break
                best = n
            print(f"\none live detector keeps up with {best} streams of 640x480 at {FPS:.0f} fps (p99 latency < 1 s)")
        finally:
            server.kill()


if __name__ == "__main__":
    main()
