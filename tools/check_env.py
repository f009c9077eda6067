"""Fail the set-up if the environment breaks a rule: exactly one OpenCV (headless), pinned torch.

The development environment holds everything the detector image does, so it keeps the detector image's
rules (tools/check_image.py), checked by the same code.
"""

from __future__ import annotations

import sys

from check_image import installed, problems


def main() -> int:
    lines = problems("detector", installed())
    for line in lines:
        print(f"environment check: {line}", file=sys.stderr)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
