"""Fail the set-up if the environment breaks a rule: exactly one OpenCV (headless), pinned torch."""

from __future__ import annotations

import sys
from importlib import metadata

OPENCV_DISTS = ("opencv-python", "opencv-contrib-python", "opencv-python-headless", "opencv-contrib-python-headless")
EXPECTED = {"torch": "2.14.1", "torchvision": "0.29.1"}


def main() -> int:
    problems = []
    installed = [d for d in OPENCV_DISTS if _version(d)]
    if installed != ["opencv-python-headless"]:
        problems.append(f"expected exactly one OpenCV (opencv-python-headless), found: {', '.join(installed) or 'none'}")
    for dist, want in EXPECTED.items():
        have = _version(dist)
        if have is None or have.split("+")[0] != want:
            problems.append(f"{dist}: expected {want}, found {have}")
    for line in problems:
        print(f"environment check: {line}", file=sys.stderr)
    return 1 if problems else 0


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
