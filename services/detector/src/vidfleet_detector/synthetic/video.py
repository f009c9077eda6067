"""Write a generated scene as an MP4 plus MOT-style ground truth, and read that ground truth back.

Ground-truth rows (``<stem>.gt.txt`` next to the video), one per object per frame, frames from 1::

    frame,id,x,y,w,h,1,class,visibility

``x, y, w, h`` is the whole shape's box clipped to the frame; ``visibility`` is in [0, 1]. Every
object touching the frame has a row, however little of it is visible: scorers should keep only
rows with ``visibility >= MIN_VISIBILITY`` (``load_ground_truth(..., min_visibility=...)``) and
ignore detections that match the others.

Test videos use seeds below 1000; training data uses seeds from 1_000_000 (see ``dataset``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2

from .scene import GroundTruthObject, Scene

__all__ = ["GeneratedVideo", "generate_video", "gt_path_for", "load_ground_truth"]

GT_SUFFIX = ".gt.txt"


@dataclass(frozen=True)
class GeneratedVideo:
    """Where :func:`generate_video` wrote the video and its ground truth, and what it wrote."""

    video: Path
    ground_truth: Path
    frames: int
    width: int
    height: int
    fps: float
    ids: int  # distinct object ids in the ground truth


def gt_path_for(video: Path) -> Path:
    """``clip.mp4`` -> ``clip.gt.txt`` in the same folder."""
    video = Path(video)
    return video.with_name(video.stem + GT_SUFFIX)


def generate_video(
    path: Path,
    *,
    seed: int,
    frames: int = 150,
    width: int = 640,
    height: int = 480,
    fps: float = 15.0,
    objects: int = 5,
) -> GeneratedVideo:
    """Render a seeded scene to ``path`` (MP4, 'mp4v') and its ground truth to ``<stem>.gt.txt``.

    The video is read back with OpenCV afterwards; a frame count or size that does not match
    raises ``RuntimeError``. The same arguments always give the same frames and ground truth.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gt_path = gt_path_for(path)
    scene = Scene(seed, width=width, height=height, objects=objects)
    tmp_video = path.with_name(f".{path.stem}.tmp{path.suffix or '.mp4'}")
    writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write an 'mp4v' video here")
    rows: list[str] = []
    ids: set[int] = set()
    try:
        for index, frame in enumerate(scene.frames(frames), start=1):
            writer.write(frame.image)
            for o in frame.objects:
                rows.append(
                    f"{index},{o.id},{o.x:.0f},{o.y:.0f},{o.w:.0f},{o.h:.0f},1,{o.class_id},{o.visibility:.4f}"
                )
                ids.add(o.id)
    finally:
        writer.release()
    _check_video(tmp_video, frames, width, height)
    os.replace(tmp_video, path)
    tmp_gt = gt_path.with_name(f".{gt_path.name}.tmp")
    tmp_gt.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp_gt, gt_path)
    return GeneratedVideo(path, gt_path, frames, width, height, float(fps), len(ids))


def _check_video(path: Path, frames: int, width: int, height: int) -> None:
    capture = cv2.VideoCapture(str(path))
    try:
        count = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if image.shape[:2] != (height, width):
                raise RuntimeError(f"{path}: decoded frame is {image.shape[1]}x{image.shape[0]}, wrote {width}x{height}")
            count += 1
    finally:
        capture.release()
    if count != frames:
        path.unlink(missing_ok=True)
        raise RuntimeError(f"{path}: OpenCV decodes {count} frames, wrote {frames}")


def load_ground_truth(path: Path, *, min_visibility: float = 0.0) -> dict[int, list[GroundTruthObject]]:
    """Read a ``.gt.txt`` (or the ``.mp4`` beside it) into ``{frame: [objects]}``, frames from 1.

    Only rows with ``visibility >= min_visibility`` are kept; frames with no kept row are absent.
    """
    path = Path(path)
    if not path.name.endswith(GT_SUFFIX):
        path = gt_path_for(path)
    result: dict[int, list[GroundTruthObject]] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 9:
            raise ValueError(f"{path}: line {line_number}: expected 9 columns, got {len(fields)}")
        frame, obj_id, x, y, w, h, _conf, cls, vis = fields
        obj = GroundTruthObject(int(obj_id), int(cls), float(x), float(y), float(w), float(h), float(vis))
        if obj.visibility >= min_visibility:
            result.setdefault(int(frame), []).append(obj)
    return result
