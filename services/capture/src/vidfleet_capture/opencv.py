"""OpenCV, imported in one place after its own logging is silenced.

FFmpeg and OpenCV would print their own warnings for every unreadable source; ours is the one line.
The variables must be set before the first `import cv2` in the process, so every capture module
imports cv2 from here.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2  # noqa: E402

__all__ = ["cv2"]
