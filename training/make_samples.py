"""Regenerate the sample videos in samples/ (and their ``.gt.txt`` ground truth).

    PYTHONPATH=services/detector/src python training/make_samples.py [--out samples]

The samples are deterministic: the same command always writes the same frames and ground truth
(the MP4 bytes can differ between OpenCV builds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidfleet_detector.synthetic import generate_video

REPO = Path(__file__).resolve().parents[1]

#: name -> (seed, objects); all 150 frames, 640x480, 15 fps. Seeds < 1000: never in the training set.
SAMPLES: dict[str, tuple[int, int]] = {
    "crossing.mp4": (11, 5),
    "crowd.mp4": (12, 12),
}
MAX_BYTES = 1_500_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate vidfleet's sample videos.")
    parser.add_argument("--out", type=Path, default=REPO / "samples", help="folder for the videos (default samples/)")
    args = parser.parse_args(argv)
    for name, (seed, objects) in SAMPLES.items():
        video = generate_video(args.out / name, seed=seed, frames=150, width=640, height=480, fps=15.0, objects=objects)
        size = video.video.stat().st_size
        print(f"{video.video}: seed {seed}, {objects} objects, {video.frames} frames, {video.ids} ids, {size / 1e6:.2f} MB")
        if size > MAX_BYTES:
            print(f"warning: {video.video} is larger than {MAX_BYTES / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
