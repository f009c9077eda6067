"""Speed of vidfleet's pipeline against the loops users would otherwise write, on one video, in one run.

  (a) vidfleet:  process_video (decode-ahead thread, batched model, SORT + writers on their own thread)
  (b) predict:   for frame in video: model.predict(frame)            (no tracking, no outputs)
  (c) track:     model.track(source=video, stream=True)              (ultralytics' own tracking loop)

Prints frames/s for each and the ratios. Every timing excludes model loading and includes a warm-up.
Then counting's cost: vidfleet with 4 counting lines and 4 zones against none (goal: >= 0.98x), the two
runs alternated --rounds times and the median of each taken, so that a shared machine's noise hits both.
Usage: python bench/bench_pipeline.py [--video V] [--model M] [--device cpu|cuda] [--half] [--batch 1 8 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402

from vidfleet_common.inputs import VideoRef  # noqa: E402
from vidfleet_common.job_config import JobConfig  # noqa: E402
from vidfleet_detector.model_runner import ModelRunner, ensure_yolo_config_dir, resolve_model_path  # noqa: E402
from vidfleet_detector.pipeline import process_video  # noqa: E402


def _video(args: argparse.Namespace, workdir: Path) -> Path:
    if args.video:
        return Path(args.video)
    from vidfleet_detector.synthetic import generate_video

    path = workdir / "bench.mp4"
    generate_video(path, seed=900, frames=args.frames, objects=6)
    return path


def _frame_count(video: Path) -> int:
    capture = cv2.VideoCapture(str(video))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


# 4 lines (vertical, horizontal, diagonal, short) and 4 zones (rectangles, a triangle, a concave 8-gon), in pixels of 640x480.
COUNTING = {
    "lines": [
        {"name": "gate", "points": [[320, 0], [320, 480]]},
        {"name": "belt", "points": [[0, 240], [640, 240]], "directions": ["down", "up"]},
        {"name": "diagonal", "points": [[0, 0], [640, 480]]},
        {"name": "door", "points": [[100, 300], [250, 420]], "classes": ["circle"]},
    ],
    "zones": [
        {"name": "dock", "polygon": [[0, 0], [200, 0], [200, 200], [0, 200]], "capacity": 2},
        {"name": "yard", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]},
        {"name": "wedge", "polygon": [[380, 80], [600, 420], [360, 420]]},
        {"name": "u", "polygon": [[100, 100], [200, 100], [200, 300], [400, 300], [400, 100], [500, 100], [500, 400], [100, 400]]},
    ],
}


def bench_vidfleet(video: Path, config: JobConfig, out: Path, runner: ModelRunner | None = None) -> float:
    runner = runner or ModelRunner(config)
    out.mkdir(parents=True, exist_ok=True)
    runner.predict([cv2.imread(str(_first_frame(video, out)))] * config.batch)  # warm-up
    ref = VideoRef(str(video), f"bench-b{config.batch}")
    started = time.perf_counter()
    result = process_video(ref, config, runner, out)
    elapsed = time.perf_counter() - started
    if not result.ok:
        sys.exit(f"vidfleet failed: {result.error}")
    return result.frames / elapsed


def bench_predict_loop(video: Path, config: JobConfig) -> float:
    from ultralytics import YOLO

    model = YOLO(resolve_model_path(config.model))
    kwargs = _ultralytics_args(config)
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    model.predict(frame, **kwargs)  # warm-up
    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    frames, started = 0, time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        model.predict(frame, **kwargs)
        frames += 1
    return frames / (time.perf_counter() - started)


def bench_track_loop(video: Path, config: JobConfig) -> float:
    from ultralytics import YOLO

    model = YOLO(resolve_model_path(config.model))
    kwargs = _ultralytics_args(config)
    capture = cv2.VideoCapture(str(video))
    model.predict(capture.read()[1], **kwargs)  # warm-up
    capture.release()
    frames, started = 0, time.perf_counter()
    for _ in model.track(source=str(video), stream=True, **kwargs):
        frames += 1
    return frames / (time.perf_counter() - started)


def _ultralytics_args(config: JobConfig) -> dict[str, object]:
    runner_args: dict[str, object] = {"conf": config.conf, "iou": config.iou, "verbose": False}
    runner_args["device"] = "cuda:0" if config.device.startswith("cuda") else config.device.replace("auto", "cpu")
    if config.imgsz:
        runner_args["imgsz"] = config.imgsz
    if config.half:
        runner_args["quantize"] = 16
    return runner_args


def _first_frame(video: Path, out: Path) -> Path:
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    capture.release()
    path = out / "first.png"
    cv2.imwrite(str(path), frame)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", help="Video to run on (default: a generated 640x480 video).")
    parser.add_argument("--frames", type=int, default=300, help="Frames of the generated video.")
    parser.add_argument("--model", default="vidfleet-shapes-n.pt")
    parser.add_argument("--imgsz", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--rounds", type=int, default=3, help="Alternated runs with and without counting.")
    args = parser.parse_args()
    ensure_yolo_config_dir()

    with tempfile.TemporaryDirectory(prefix="vidfleet-bench-") as tmp:
        workdir = Path(tmp)
        video = _video(args, workdir)
        base = JobConfig(model=args.model, imgsz=args.imgsz, device=args.device, half=args.half)
        print(f"video: {video} ({_frame_count(video)} frames)  model: {args.model}  device: {args.device}"
              f"  half: {args.half}  cpu: {os.cpu_count()} cores  python {platform.python_version()}")
        predict_fps = bench_predict_loop(video, base)
        track_fps = bench_track_loop(video, base)
        print(f"{'loop':<28}{'frames/s':>10}{'vs predict':>12}{'vs track':>10}")
        print(f"{'(b) predict loop':<28}{predict_fps:>10.1f}{1.0:>12.2f}{predict_fps / track_fps:>10.2f}")
        print(f"{'(c) ultralytics track loop':<28}{track_fps:>10.1f}{track_fps / predict_fps:>12.2f}{1.0:>10.2f}")
        for batch in args.batch:
            fps = bench_vidfleet(video, base.merged({"batch": batch}), workdir)
            label = f"(a) vidfleet batch {batch}"
            print(f"{label:<28}{fps:>10.1f}{fps / predict_fps:>12.2f}{fps / track_fps:>10.2f}")
        bench_counting(video, base.merged({"batch": max(args.batch)}), workdir, args.rounds)


def bench_counting(video: Path, config: JobConfig, workdir: Path, rounds: int) -> None:
    """vidfleet with 4 lines + 4 zones against none, alternated, same model and process; medians."""
    import statistics

    counting = config.merged(COUNTING)
    runner = ModelRunner(config)
    plain_fps, counting_fps = [], []
    for _ in range(rounds):
        plain_fps.append(bench_vidfleet(video, config, workdir / "plain", runner))
        counting_fps.append(bench_vidfleet(video, counting, workdir / "counting", runner))
    plain, counted = statistics.median(plain_fps), statistics.median(counting_fps)
    events = sum(1 for _ in (workdir / "counting" / f"bench-b{config.batch}.events.jsonl").open())
    print(f"\ncounting (batch {config.batch}, median of {rounds} alternated runs; {events} events a run)")
    print(f"{'':<28}{'frames/s':>10}{'vs none':>12}   runs")
    print(f"{'no lines or zones':<28}{plain:>10.1f}{1.0:>12.3f}   {', '.join(f'{v:.1f}' for v in plain_fps)}")
    print(f"{'4 lines + 4 zones':<28}{counted:>10.1f}{counted / plain:>12.3f}   {', '.join(f'{v:.1f}' for v in counting_fps)}")
    print(f"goal >= 0.98x: {'met' if counted / plain >= 0.98 else 'NOT met'}")
    per_frame = counter_seconds_per_frame(workdir / "counting" / f"bench-b{config.batch}.tracks.txt", counting, runner.names)
    print(f"the counter alone, replaying the tracks: {per_frame * 1e6:.0f} us a frame, {per_frame * plain:.2%} of a frame's time at {plain:.1f} fps")


def counter_seconds_per_frame(tracks_file: Path, config: JobConfig, names: dict[int, str]) -> float:
    """The counter on the recorded tracks, without the model: its own cost, free of the pipeline's noise."""
    import numpy as np

    from vidfleet_detector.analytics.counter import Counter
    from vidfleet_detector.analytics.geometry import resolve

    rows: dict[int, list[list[float]]] = {}
    for line in tracks_file.read_text().splitlines():
        frame, tid, x, y, w, h, score = (float(v) for v in line.split(",")[:7])
        rows.setdefault(int(frame), []).append([x, y, x + w, y + h, tid, score, tid % 3])
    last = max(rows)
    frames = [np.array(rows.get(f, []), np.float64).reshape(-1, 7) for f in range(1, last + 1)]
    best = float("inf")
    for _ in range(5):
        counter = Counter(resolve(config.lines, config.zones, 640, 480), names)
        started = time.perf_counter()
        for number, tracks in enumerate(frames, start=1):
            counter.update(number, number / 15, tracks, {int(t) for t in tracks[:, 4]})
        best = min(best, (time.perf_counter() - started) / len(frames))
    return best


if __name__ == "__main__":
    main()
