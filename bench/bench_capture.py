"""Capture throughput: vidfleet's capture against the plain loop it replaces, on the same videos and Redis.

  plain loop:  cap.read() -> cv2.imencode('.jpg', frame) -> redis.xadd(key, {...}, maxlen=10000) -> print(id)
  vidfleet:    capture(StreamSpec(..., realtime=False)) -- a PyAV reader that keeps frames in Y'CbCr, JPEG
               encoder threads that encode straight from the planes, and a pipelined writer

Both encode JPEG at the same quality into a Redis stream with MAXLEN ~10000 (redis-py's xadd trims
approximately by default) on one redis-server (no persistence, so that the disk is not what is
measured). The plain loop prints every id to /dev/null. frames/s counts frames appended, end to end.
The two alternate, --rounds times per video: on a shared machine the load changes from second to
second, so each round's ratio compares neighbours in time, and the figures reported are medians
(best of the rounds beside them). "cores" is CPU time (this process and redis-server) over wall time,
"CPU ms/frame" the CPU time per frame (the work, whatever the cores it got);
"available" is how many cores busy loops got at that moment (fewer than the machine's when shared).
Target: vidfleet >= 1.8x the plain loop on a 2-core machine.
Usage: python bench/bench_capture.py [--frames 300] [--rounds 7] [--quality 95] [--encoders 2]
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import redis  # noqa: E402

from tests.servers import RedisServer  # noqa: E402
from vidfleet_capture.loop import capture  # noqa: E402
from vidfleet_common.contracts import RedisKeys  # noqa: E402
from vidfleet_common.streams import StreamSpec  # noqa: E402

SIZES = ((640, 480), (1280, 720))
MAXLEN = 10_000
KEYS = RedisKeys("bench:")


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
    result = capture(spec, client, KEYS, worker="bench", maxlen=MAXLEN, encoders=encoders)
    if result.state != "ended":
        sys.exit(f"vidfleet capture failed: {result.error or result.reason}")
    return result.frames


@dataclass(frozen=True)
class Run:
    fps: float
    cores: float  # CPU seconds (this process + redis-server) per wall second

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per frame, all threads and redis-server: the work, however many cores it got."""
        return 1000 * self.cores / self.fps


def _spin(seconds: float, done: Any) -> None:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    done.put(n)


def cores_available(seconds: float = 0.4) -> float:
    """How many cores this machine gives us now: busy loops on all cores against one (on a shared host, fewer than os.cpu_count())."""
    import multiprocessing

    def work(processes: int) -> int:
        done = multiprocessing.Queue()
        spinners = [multiprocessing.Process(target=_spin, args=(seconds, done)) for _ in range(processes)]
        for spinner in spinners:
            spinner.start()
        total = sum(done.get() for _ in spinners)
        for spinner in spinners:
            spinner.join()
        return total

    cores = os.cpu_count() or 1
    return min(cores, work(cores) / max(1, work(1)))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(run: Callable[[], int], client: redis.Redis, key: str, server_pid: int) -> Run:
    client.delete(key)
    cpu = os.times()
    server_cpu = cpu_seconds(server_pid)
    started = time.perf_counter()
    frames = run()
    seconds = time.perf_counter() - started
    used = os.times()
    cores = (used.user - cpu.user + used.system - cpu.system + cpu_seconds(server_pid) - server_cpu) / seconds
    if client.xlen(key) != frames:
        sys.exit(f"{key}: {client.xlen(key)} entries for {frames} frames")
    client.delete(key)
    return Run(frames / seconds, cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", "--repeat", type=int, default=7, help="alternated runs of each, per video")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of both loops (95: cv2.imencode's default, what the plain loop used)")
    parser.add_argument("--encoders", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    cv2.setNumThreads(1)  # as `vidfleet-capture worker` does; the plain loop uses no OpenCV pool either way
    from vidfleet_detector.synthetic import generate_video

    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        folder = Path(tmp)
        server = RedisServer(folder / "redis", appendonly=False).start()
        assert server.process is not None
        try:
            client = redis.Redis.from_url(server.url)
            print(f"capture benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
                  f"({cores_available():.2f} available at start), load average {os.getloadavg()[0]:.2f}, OpenCV {cv2.__version__}, "
                  f"quality {args.quality}, {args.encoders} encoders, {args.rounds} rounds")
            print(f"{'video':>10} {'frames':>6} {'plain loop f/s':>15} {'vidfleet f/s':>13} {'ratio':>6} {'cores':>11} {'CPU ms/frame':>13}"
                  "  (medians; best)")
            ratios = []
            for width, height in SIZES:
                video = generate_video(
                    folder / f"v{width}x{height}.mp4", seed=7, frames=args.frames, width=width, height=height, fps=15.0, objects=5
                ).video
                plain_runs, ours_runs = [], []
                for _ in range(args.rounds):
                    plain_runs.append(timed(lambda: plain_loop(video, client, "bench:plain", args.quality), client, "bench:plain", server.process.pid))
                    ours_runs.append(timed(
                        lambda: vidfleet_capture(video, client, "cam", args.quality, args.encoders), client, KEYS.frames("cam"), server.process.pid
                    ))
                    client.delete(KEYS.capture_status("cam"))
                plain = statistics.median(r.fps for r in plain_runs)
                ours = statistics.median(r.fps for r in ours_runs)
                ratio = statistics.median(o.fps / p.fps for o, p in zip(ours_runs, plain_runs))
                best_plain, best_ours = max(r.fps for r in plain_runs), max(r.fps for r in ours_runs)
                cores = f"{statistics.median(r.cores for r in plain_runs):.2f} / {statistics.median(r.cores for r in ours_runs):.2f}"
                cpu = f"{statistics.median(r.cpu_ms for r in plain_runs):.2f} / {statistics.median(r.cpu_ms for r in ours_runs):.2f}"
                ratios.append(ratio)
                print(f"{width}x{height:<5} {args.frames:>6} {plain:>15.0f} {ours:>13.0f} {ratio:>5.2f}x {cores:>11} {cpu:>13}"
                      f"  (best {best_plain:.0f} / {best_ours:.0f}: {best_ours / best_plain:.2f}x)")
                print("           rounds: " + ", ".join(f"{o.fps / p.fps:.2f}x" for o, p in zip(ours_runs, plain_runs)))
            print(f"{cores_available():.2f} cores available at the end, load average {os.getloadavg()[0]:.2f}; target >= 1.8x: "
                  + ("met" if min(ratios) >= 1.8 else "NOT met") + f" (lowest median ratio {min(ratios):.2f}x)")
        finally:
            server.kill()


if __name__ == "__main__":
    main()
