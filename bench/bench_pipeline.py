"""Speed of vidfleet's pipeline against the loops users would otherwise write, on one video, in one run.

  (a) vidfleet:  process_video (decode-ahead thread, batched model, SORT + writers on their own thread)
  (b) predict:   for frame in video: model.predict(frame)            (no tracking, no outputs)
  (c) track:     model.track(source=video, stream=True)              (ultralytics' own tracking loop)

Prints frames/s for each and the ratios. Every timing excludes model loading and includes a warm-up.
Usage: python bench/bench_pipeline.py [--video V] [--model M] [--device cpu|cuda] [--half] [--batch 1 8 32]
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


def bench_vidfleet(video: Path, config: JobConfig, out: Path) -> float:
    runner = ModelRunner(config)
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


if __name__ == "__main__":
    main()
