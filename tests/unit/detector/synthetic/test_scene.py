"""The scene generator: determinism, ground-truth boxes, stable ids, visibility under occlusion."""

from __future__ import annotations

import numpy as np
import pytest

from vidfleet_detector.synthetic import CLASS_NAMES, MIN_VISIBILITY, Scene
from vidfleet_detector.synthetic.scene import _Shape


def _run(seed: int, frames: int = 40, **kwargs: int):
    return list(Scene(seed, **kwargs).frames(frames))


def test_class_names_are_the_models_classes() -> None:
    assert CLASS_NAMES == ("circle", "square", "triangle")
    assert 0.0 < MIN_VISIBILITY < 1.0


def test_same_seed_same_frames_and_truth() -> None:
    a, b = _run(3), _run(3)
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.image, fb.image)
        assert fa.objects == fb.objects


def test_different_seeds_differ() -> None:
    assert not np.array_equal(_run(3, 1)[0].image, _run(4, 1)[0].image)


def test_generator_argument_is_used() -> None:
    a = Scene(np.random.default_rng(9)).render()
    b = Scene(9).render()
    assert np.array_equal(a.image, b.image)


def test_frame_shape_and_type() -> None:
    frame = Scene(1, width=320, height=200).render()
    assert frame.image.shape == (200, 320, 3)
    assert frame.image.dtype == np.uint8


def test_background_is_not_flat() -> None:
    background = Scene(5, objects=0).render().image.astype(np.float64)
    assert background.std(axis=(0, 1)).max() > 5.0


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 11, 12])
def test_boxes_inside_frame_and_visibility_in_range(seed: int) -> None:
    width, height = 640, 480
    for frame in _run(seed, 150, objects=8):
        for o in frame.objects:
            assert 0 <= o.x and 0 <= o.y and o.w > 0 and o.h > 0
            assert o.x + o.w <= width and o.y + o.h <= height
            assert 0.0 <= o.visibility <= 1.0
            assert o.class_id in (0, 1, 2)


def test_object_sizes_are_in_the_documented_range() -> None:
    sizes = [max(o.w, o.h) for f in _run(2, 1, objects=30) for o in f.objects if o.visibility == 1.0]
    assert sizes and min(sizes) >= 25 and max(sizes) <= 110


def test_ids_start_at_one_and_keep_their_class() -> None:
    frames = _run(11, 150, objects=6)
    first = frames[0].objects
    assert sorted(o.id for o in first) == list(range(1, len(first) + 1))
    classes: dict[int, int] = {}
    last_seen: dict[int, int] = {}
    for index, frame in enumerate(frames):
        ids = [o.id for o in frame.objects]
        assert len(ids) == len(set(ids))
        for o in frame.objects:
            assert classes.setdefault(o.id, o.class_id) == o.class_id
            last_seen[o.id] = index
    assert min(classes) == 1


def test_ids_are_continuous_tracks() -> None:
    """An id is on screen for one unbroken run of frames and moves smoothly (never re-used)."""
    frames = _run(12, 150, objects=10)
    seen: dict[int, list[int]] = {}
    centres: dict[int, list[tuple[float, float]]] = {}
    for index, frame in enumerate(frames):
        for o in frame.objects:
            seen.setdefault(o.id, []).append(index)
            centres.setdefault(o.id, []).append((o.x + o.w / 2, o.y + o.h / 2))
    for obj_id, indices in seen.items():
        assert indices == list(range(indices[0], indices[-1] + 1)), f"id {obj_id} comes back after leaving"
        jumps = np.abs(np.diff(np.array(centres[obj_id]), axis=0))
        assert jumps.size == 0 or jumps.max() < 50, f"id {obj_id} jumps"


def test_objects_move() -> None:
    frames = _run(7, 20)
    start = {o.id: (o.x, o.y) for o in frames[0].objects}
    end = {o.id: (o.x, o.y) for o in frames[-1].objects}
    assert any(start[k] != end[k] for k in start.keys() & end.keys())


def test_objects_leave_and_new_ones_enter() -> None:
    ids = {o.id for seed in range(5) for f in _run(seed, 150, objects=5) for o in f.objects}
    assert max(ids) > 5


def _place(scene: Scene, shape: _Shape, x: float, y: float, depth: float) -> None:
    shape.pos = np.array([x, y])
    shape.depth = depth


def test_visibility_drops_when_covered() -> None:
    scene = Scene(21, objects=2)
    back, front = scene.shapes
    back.size = front.size = 60.0
    _place(scene, back, 200, 200, depth=0.1)
    _place(scene, front, 450, 200, depth=0.9)
    apart = {o.id: o for o in scene.render().objects}
    assert apart[back.id].visibility == pytest.approx(1.0)
    assert apart[front.id].visibility == pytest.approx(1.0)

    _place(scene, front, 225, 200, depth=0.9)  # overlaps the back one
    overlapping = {o.id: o for o in scene.render().objects}
    assert 0.05 < overlapping[back.id].visibility < 0.95
    assert overlapping[front.id].visibility == pytest.approx(1.0)
    # The box is the whole shape's box: covering does not shrink it.
    assert (overlapping[back.id].w, overlapping[back.id].h) == (apart[back.id].w, apart[back.id].h)

    _place(scene, front, 200, 200, depth=0.9)
    front.size = 200.0  # swallows the back one entirely
    covered = {o.id: o for o in scene.render().objects}
    assert covered[back.id].visibility == 0.0


def test_visibility_counts_the_part_outside_the_frame() -> None:
    scene = Scene(22, objects=1)
    (shape,) = scene.shapes
    shape.size = 60.0
    _place(scene, shape, 0.0, 240.0, depth=0.5)  # centred on the left border: about half inside
    (truth,) = scene.render().objects
    assert 0.35 < truth.visibility < 0.65
    assert truth.x == 0.0 and 25 <= truth.w <= 40
    _place(scene, shape, -200.0, 240.0, depth=0.5)
    assert scene.render().objects == ()


def test_some_objects_occlude_each_other_in_a_busy_scene() -> None:
    partly = [o.visibility for f in _run(12, 150, objects=12) for o in f.objects if 0.0 < o.visibility < 0.9]
    assert len(partly) > 20
