"""Small real video files for tests, written with OpenCV: good ones and every kind of bad one."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: int, *, size: tuple[int, int] = (64, 48), fps: float = 15.0, fourcc: str = "mp4v") -> Path:
    """A video whose frame i has every pixel equal to i (so decoded frames can be identified)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"cannot write {path}"
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (i * 8) % 256, np.uint8))
    writer.release()
    return path


def bad_inputs(folder: Path) -> dict[str, str]:
    """Every bad input of the foundation issue -> the fragment its one-line error must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.mp4").write_text("this is not a video\n")
    (folder / "empty.mp4").write_bytes(b"")
    good = write_video(folder / "whole.mp4", 20).read_bytes()
    (folder / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (folder / "whole.mp4").unlink()
    write_video(folder / "zero_frames.avi", 0, fourcc="MJPG")
    return {
        str(folder / "missing.mp4"): "no such file or folder",
        str(folder / "notes.mp4"): "not a readable video",
        str(folder / "empty.mp4"): "file is empty (0 bytes)",
        str(folder / "truncated.mp4"): "not a readable video",
        str(folder / "zero_frames.avi"): "video has no frames",
        # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        "http://127.0.0.1:9/camera.mp4": "could not open the URL",
    }
