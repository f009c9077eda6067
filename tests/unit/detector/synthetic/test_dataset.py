"""The YOLO training set: layout, labels in range, seeds kept away from test seeds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidfleet_detector.synthetic import (
    MIN_VISIBILITY,
    TEST_SEED_LIMIT,
    TRAIN_SEED_MIN,
    generate_yolo_dataset,
    render_training_frame,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory):
    return generate_yolo_dataset(tmp_path_factory.mktemp("ds") / "shapes", images=20, seed=TRAIN_SEED_MIN)


def test_layout_and_split(dataset) -> None:
    root = dataset.root
    assert (dataset.train_images, dataset.val_images) == (18, 2)
    for split, count in (("train", 18), ("val", 2)):
        images = sorted((root / "images" / split).glob("*.jpg"))
        labels = sorted((root / "labels" / split).glob("*.txt"))
        assert len(images) == len(labels) == count
        assert [p.stem for p in images] == [p.stem for p in labels]


def test_data_yaml_names(dataset) -> None:
    text = dataset.data_yaml.read_text()
    assert f"path: {dataset.root.resolve()}" in text
    assert "train: images/train" in text and "val: images/val" in text
    assert "0: circle" in text and "1: square" in text and "2: triangle" in text


def test_labels_in_range(dataset) -> None:
    count = 0
    for label in (dataset.root / "labels").rglob("*.txt"):
        for line in label.read_text().splitlines():
            cls, *box = line.split()
            assert cls in ("0", "1", "2")
            cx, cy, w, h = map(float, box)
            assert 0 < w <= 1 and 0 < h <= 1
            assert 0 <= cx - w / 2 + 1e-6 and cx + w / 2 <= 1 + 1e-6
            assert 0 <= cy - h / 2 + 1e-6 and cy + h / 2 <= 1 + 1e-6
            count += 1
    assert count == dataset.labels > 20


def test_images_are_readable_frames(dataset) -> None:
    image = cv2.imread(str(next((dataset.root / "images" / "train").glob("*.jpg"))))
    assert image is not None and image.shape == (480, 640, 3)


def test_deterministic(tmp_path: Path, dataset) -> None:
    again = generate_yolo_dataset(tmp_path / "again", images=20, seed=TRAIN_SEED_MIN)
    for label in (dataset.root / "labels").rglob("*.txt"):
        assert (again.root / label.relative_to(dataset.root)).read_text() == label.read_text()


def test_imgsz_shrinks_images(tmp_path: Path) -> None:
    small = generate_yolo_dataset(tmp_path / "small", images=3, seed=TRAIN_SEED_MIN, imgsz=320)
    image = cv2.imread(str(next((small.root / "images" / "train").glob("*.jpg"))))
    assert image.shape == (240, 320, 3)


def test_only_visible_enough_objects_are_labelled() -> None:
    rng = np.random.default_rng([TRAIN_SEED_MIN, 5])
    _image, labels = render_training_frame(rng, min_objects=12, max_objects=12)
    assert 0 < len(labels) <= 12
    assert 0.0 < MIN_VISIBILITY < 1.0


def test_test_seeds_are_refused(tmp_path: Path) -> None:
    assert TEST_SEED_LIMIT <= TRAIN_SEED_MIN
    with pytest.raises(ValueError, match="training seeds"):
        generate_yolo_dataset(tmp_path / "bad", images=5, seed=7)


def test_generator_does_not_import_torch_or_ultralytics() -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys, vidfleet_detector.synthetic as s; "
        "bad = [m for m in ('torch', 'ultralytics') if m in sys.modules]; "
        "assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
