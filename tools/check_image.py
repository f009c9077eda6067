"""Fail an image build whose environment breaks the image's rules (run with the image's Python).

    python tools/check_image.py capture|coordinator|detector [--path SITE_PACKAGES]

- every image: its own vidfleet distribution is installed, and never a non-headless OpenCV;
- capture and coordinator: no torch, torchvision, ultralytics or filterpy;
- capture: exactly one OpenCV, opencv-python-headless; coordinator: no OpenCV at all;
- detector: exactly one OpenCV (opencv-python-headless) and the pinned torch/torchvision builds.

Standard library only: the image's environment may hold nothing else.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata

HEADLESS = "opencv-python-headless"
OPENCV = ("opencv-python", "opencv-contrib-python", HEADLESS, "opencv-contrib-python-headless")
HEAVY = ("torch", "torchvision", "ultralytics", "ultralytics-opencv-headless", "filterpy")
TORCH = {"torch": "2.14.1", "torchvision": "0.29.1"}
IMAGES = ("capture", "coordinator", "detector")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(path: list[str] | None = None) -> dict[str, str]:
    """Normalised distribution name -> version, for the environment (or the given folders)."""
    dists = metadata.distributions(path=path) if path else metadata.distributions()
    return {_normalise(d.metadata["Name"]): d.version for d in dists if d.metadata["Name"]}


def problems(image: str, dists: dict[str, str]) -> list[str]:
    """Each rule the environment breaks, as one line."""
    found = []
    own = f"vidfleet-{image}"
    if own not in dists:
        found.append(f"{own} is not installed")
    opencv = sorted(d for d in OPENCV if d in dists)
    if image == "coordinator":
        if opencv:
            found.append(f"no OpenCV expected, found: {', '.join(opencv)}")
    elif opencv != [HEADLESS]:
        found.append(f"expected exactly one OpenCV ({HEADLESS}), found: {', '.join(opencv) or 'none'}")
    if image == "detector":
        for dist, want in TORCH.items():
            have = dists.get(dist)
            if have is None or have.split("+")[0] != want:
                found.append(f"{dist}: expected {want}, found {have}")
    else:
        heavy = sorted(d for d in HEAVY if d in dists)
        if heavy:
            found.append(f"the {image} image must not contain {', '.join(heavy)}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check an image's Python environment against its rules.")
    parser.add_argument("image", choices=IMAGES)
    parser.add_argument("--path", action="append", help="Look in this site-packages folder instead (repeatable).")
    args = parser.parse_args(argv)
    lines = problems(args.image, installed(args.path))
    for line in lines:
        print(f"image check ({args.image}): {line}", file=sys.stderr)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
