"""A YOLO detection dataset of single frames from random scenes.

Layout under ``root``::

    data.yaml
    images/{train,val}/000000.jpg
    labels/{train,val}/000000.txt     # "class cx cy w h", normalised to [0, 1]

An object gets a label only if ``visibility >= MIN_VISIBILITY`` -- the same rule the tracking
tests use to decide which ground-truth rows must be found. Images are JPEG (quality drawn per
image) so that the model sees compression artefacts like those of the MP4 test videos.

Seeds: training data uses seeds ``>= TRAIN_SEED_MIN`` (1_000_000); test videos use seeds below
``TEST_SEED_LIMIT`` (1000), so no test scene is ever in the training set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .scene import CLASS_NAMES, MIN_VISIBILITY, Scene

__all__ = [
    "MIN_VISIBILITY",
    "TEST_SEED_LIMIT",
    "TRAIN_SEED_MIN",
    "YoloDataset",
    "generate_yolo_dataset",
    "render_training_frame",
]

TRAIN_SEED_MIN = 1_000_000
TEST_SEED_LIMIT = 1000


@dataclass(frozen=True)
class YoloDataset:
    """Where :func:`generate_yolo_dataset` wrote its files and how many of each."""

    root: Path
    data_yaml: Path
    train_images: int
    val_images: int
    labels: int  # labelled objects over both splits


def render_training_frame(
    rng: np.random.Generator,
    *,
    width: int = 640,
    height: int = 480,
    min_objects: int = 1,
    max_objects: int = 12,
    max_steps: int = 40,
) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """One random scene frame and its YOLO labels ``(class, cx, cy, w, h)`` (normalised)."""
    scene = Scene(rng, width=width, height=height, objects=int(rng.integers(min_objects, max_objects + 1)))
    for _ in range(int(rng.integers(0, max_steps + 1))):  # lets objects drift, overlap, enter and leave
        scene.step()
    frame = scene.render()
    labels = []
    for o in frame.objects:
        if o.visibility < MIN_VISIBILITY:
            continue
        labels.append((o.class_id, (o.x + o.w / 2) / width, (o.y + o.h / 2) / height, o.w / width, o.h / height))
    return frame.image, labels


def generate_yolo_dataset(
    root: Path,
    *,
    images: int,
    seed: int,
    val_fraction: float = 0.1,
    imgsz: int | None = None,
    width: int = 640,
    height: int = 480,
    min_objects: int = 1,
    max_objects: int = 12,
    jpeg_quality: tuple[int, int] = (60, 95),
) -> YoloDataset:
    """Write ``images`` labelled frames (``val_fraction`` of them to ``val``) and ``data.yaml`` under ``root``.

    Frames are rendered at ``width x height`` (the test videos' size); with ``imgsz`` they are
    shrunk so the long side is ``imgsz`` before saving (labels are normalised, so unchanged).
    Image ``i`` depends only on ``(seed, i)``. ``seed`` must be ``>= TRAIN_SEED_MIN``.
    """
    if seed < TRAIN_SEED_MIN:
        raise ValueError(f"training seeds start at {TRAIN_SEED_MIN} (tests use seeds < {TEST_SEED_LIMIT}); got {seed}")
    if images < 2:
        raise ValueError(f"images must be >= 2, got {images}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    root = Path(root)
    n_val = min(max(1, round(images * val_fraction)), images - 1)
    splits = {"train": images - n_val, "val": n_val}
    for split in splits:
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    total_labels = 0
    index = 0
    for split, count in splits.items():
        for _ in range(count):
            rng = np.random.default_rng([seed, index])
            image, labels = render_training_frame(
                rng, width=width, height=height, min_objects=min_objects, max_objects=max_objects
            )
            if imgsz is not None and max(width, height) > imgsz:
                scale = imgsz / max(width, height)
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            quality = int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
            name = f"{index:06d}"
            cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            text = "".join(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in labels)
            (root / "labels" / split / f"{name}.txt").write_text(text, encoding="utf-8")
            total_labels += len(labels)
            index += 1
    data_yaml = root / "data.yaml"
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(CLASS_NAMES))
    data_yaml.write_text(
        f"# vidfleet synthetic shapes, seed {seed}, {images} images\n"
        f"path: {root.resolve()}\ntrain: images/train\nval: images/val\nnc: {len(CLASS_NAMES)}\nnames:\n{names}",
        encoding="utf-8",
    )
    return YoloDataset(root, data_yaml, splits["train"], splits["val"], total_labels)
