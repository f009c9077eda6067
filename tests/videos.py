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
        "http://127.0.0.1:9/camera.mp4": "could not open the URL (connection refused)",
    }


def frame_code(image) -> int:
    """The number `write_h264_numbered` drew into a decoded frame (8 black/white bars, bit 0 on the left)."""
    height, width = image.shape[:2]
    bar = width // 8
    return sum(1 << b for b in range(8) if image[height // 2, b * bar + bar // 2].mean() > 128)


def write_h264_numbered(path: Path, frames: int, *, fps: int = 10, gop: int = 12, size: tuple[int, int] = (160, 96)) -> Path:
    """H.264 (libx264, 3 B-frames, a keyframe at least every `gop` frames) whose frame i shows i % 256 as 8 bars."""
    import av
    import numpy as np

    width, height = size
    bar = width // 8
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop), "bf": "3", "preset": "fast"}
        for i in range(frames):
            image = np.zeros((height, width, 3), np.uint8)
            for b in range(8):
                if (i % 256) >> b & 1:
                    image[:, b * bar:(b + 1) * bar] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
