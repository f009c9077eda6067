"""Sort: lifecycle (min_hits, max_age), ids, extra output columns, validation."""

from __future__ import annotations

import numpy as np
import pytest

from vidfleet_detector.tracking import Sort

BOX_A = [100.0, 100.0, 140.0, 180.0]
BOX_B = [400.0, 50.0, 450.0, 150.0]
BOX_C = [700.0, 300.0, 730.0, 360.0]
EMPTY = np.empty((0, 5))


def _dets(*boxes: list[float], score: float = 0.9) -> np.ndarray:
    return np.array([[*box, score] for box in boxes], dtype=float) if boxes else EMPTY


def _run(tracker: Sort, frames: list[np.ndarray]) -> list[dict[int, np.ndarray]]:
    """Feed frames; return per frame {track_id: output row}."""
    out = []
    for dets in frames:
        rows = tracker.update(dets)
        assert rows.ndim == 2 and rows.shape[1] == 7
        out.append({int(r[4]): r for r in rows})
    return out


def _ids(per_frame: list[dict[int, np.ndarray]]) -> list[list[int]]:
    return [sorted(frame) for frame in per_frame]


def test_static_object_is_reported_every_frame_with_id_1() -> None:
    per_frame = _run(Sort(), [_dets(BOX_A)] * 6)
    assert _ids(per_frame) == [[1]] * 6
    np.testing.assert_allclose(per_frame[-1][1][:4], BOX_A, atol=1e-6)


@pytest.mark.parametrize(
    ("min_hits", "first_reported_frame"),
    [(0, 7), (1, 8), (2, 9), (3, 10), (5, 12)],
)
def test_min_hits_delays_reporting_of_late_tracks(min_hits: int, first_reported_frame: int) -> None:
    # A is present from frame 1; B appears at frame 7, after the warm-up frames (frame_count <= min_hits).
    frames = [_dets(BOX_A)] * 6 + [_dets(BOX_A, BOX_B)] * 10
    per_frame = _run(Sort(max_age=1, min_hits=min_hits), frames)
    assert all(1 in frame for frame in per_frame)
    reported_b = [i + 1 for i, frame in enumerate(per_frame) if 2 in frame]
    assert reported_b == list(range(first_reported_frame, 17))


def test_every_track_is_reported_during_first_min_hits_frames() -> None:
    # The reference reports all tracks updated this frame while frame_count <= min_hits.
    frames = [_dets(BOX_A), _dets(BOX_A, BOX_B), _dets(BOX_A, BOX_B, BOX_C), _dets(BOX_A, BOX_B, BOX_C)]
    per_frame = _run(Sort(min_hits=3), frames)
    assert _ids(per_frame) == [[1], [1, 2], [1, 2, 3], [1]]


@pytest.mark.parametrize(
    ("max_age", "gap", "same_id_after_gap"),
    [(0, 1, False), (1, 1, True), (1, 2, False), (2, 2, True), (2, 3, False), (5, 5, True)],
)
def test_max_age_keeps_track_through_gap(max_age: int, gap: int, same_id_after_gap: bool) -> None:
    frames = [_dets(BOX_A)] * 4 + [EMPTY] * gap + [_dets(BOX_A)] * 4
    tracker = Sort(max_age=max_age, min_hits=0)
    per_frame = _run(tracker, frames)
    for i in range(4, 4 + gap):
        assert per_frame[i] == {}, f"nothing is reported in gap frame {i + 1}"
    after = per_frame[4 + gap]
    assert list(after) == ([1] if same_id_after_gap else [2])


def test_max_age_drops_trackers() -> None:
    tracker = Sort(max_age=2)
    tracker.update(_dets(BOX_A, BOX_B))
    assert tracker.active_tracks == 2
    tracker.update(_dets(BOX_A))
    tracker.update(_dets(BOX_A))
    assert tracker.active_tracks == 2  # B missed 2 frames, max_age 2
    tracker.update(_dets(BOX_A))
    assert tracker.active_tracks == 1
    tracker.update(EMPTY)
    tracker.update(EMPTY)
    tracker.update(EMPTY)
    assert tracker.active_tracks == 0


def test_track_reappearing_after_min_hits_must_rebuild_streak() -> None:
    frames = [_dets(BOX_A)] * 5 + [EMPTY] + [_dets(BOX_A)] * 4
    per_frame = _run(Sort(max_age=1, min_hits=3), frames)
    # frames 7, 8 have streak 1, 2 -> hidden; frame 9 streak 3 -> reported again, same id
    assert _ids(per_frame) == [[1]] * 5 + [[], [], [], [1], [1]]


def test_ids_are_per_instance_and_start_at_1() -> None:
    first, second = Sort(), Sort()
    for _ in range(3):
        a = first.update(_dets(BOX_A, BOX_B))
        b = second.update(_dets(BOX_C))
    assert sorted(a[:, 4].tolist()) == [1.0, 2.0]
    assert b[:, 4].tolist() == [1.0]
    third = Sort()
    assert third.update(_dets(BOX_B))[:, 4].tolist() == [1.0]


def test_new_ids_count_up_within_one_instance() -> None:
    tracker = Sort(max_age=0, min_hits=0)
    seen = []
    for box in (BOX_A, BOX_B, BOX_C, BOX_A):
        seen.extend(tracker.update(_dets(box))[:, 4].astype(int).tolist())
    assert seen == [1, 2, 3, 4]


def test_score_and_class_columns_follow_matched_detection() -> None:
    tracker = Sort(min_hits=1)
    out1 = tracker.update(np.array([[*BOX_A, 0.9, 2.0], [*BOX_B, 0.6, 7.0]]))
    out2 = tracker.update(np.array([[*BOX_B, 0.55, 7.0], [*BOX_A, 0.95, 2.0]]))
    for out, expected in ((out1, {1: (0.9, 2.0), 2: (0.6, 7.0)}), (out2, {1: (0.95, 2.0), 2: (0.55, 7.0)})):
        got = {int(r[4]): (r[5], r[6]) for r in out}
        assert got.keys() == expected.keys()
        for track_id, (score, cls) in expected.items():
            assert got[track_id][0] == pytest.approx(score)
            assert got[track_id][1] == cls


def test_class_column_is_minus_one_without_class() -> None:
    out = Sort().update(_dets(BOX_A, BOX_B, score=0.8))
    assert out.shape == (2, 7)
    assert out[:, 6].tolist() == [-1.0, -1.0]
    np.testing.assert_allclose(out[:, 5], [0.8, 0.8])


def test_class_column_does_not_change_reference_columns() -> None:
    rng = np.random.default_rng(0)
    five, six = Sort(), Sort()
    base = np.array([BOX_A, BOX_B, BOX_C])
    for _ in range(15):
        boxes = base + rng.normal(0, 2, base.shape)
        keep = rng.random(3) > 0.2
        dets5 = np.hstack([boxes, rng.random((3, 1))])[keep]
        dets6 = np.hstack([dets5, rng.integers(0, 5, (len(dets5), 1))])
        out5, out6 = five.update(dets5), six.update(dets6)
        np.testing.assert_array_equal(out5[:, :6], out6[:, :6])
        assert (out5[:, 6] == -1).all()


@pytest.mark.parametrize("empty", [None, np.empty((0, 5)), np.empty((0, 6))])
def test_empty_frames(empty: np.ndarray | None) -> None:
    tracker = Sort()
    out = tracker.update(empty)
    assert out.shape == (0, 7)
    assert tracker.frame_count == 1
    tracker.update(_dets(BOX_A))
    assert tracker.update(empty).shape == (0, 7)
    assert tracker.update().shape == (0, 7)
    assert tracker.active_tracks == 0


def test_integer_detections_are_accepted() -> None:
    out = Sort().update(np.array([[100, 100, 140, 180, 1]]))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[0, :5], [100, 100, 140, 180, 1])


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_age": -1}, "max_age"),
        ({"max_age": 1.5}, "max_age"),
        ({"max_age": "1"}, "max_age"),
        ({"max_age": True}, "max_age"),
        ({"min_hits": -2}, "min_hits"),
        ({"min_hits": 3.0}, "min_hits"),
        ({"min_hits": None}, "min_hits"),
        ({"iou_threshold": -0.1}, "iou_threshold"),
        ({"iou_threshold": 1.5}, "iou_threshold"),
        ({"iou_threshold": float("nan")}, "iou_threshold"),
        ({"iou_threshold": "0.3"}, "iou_threshold"),
    ],
)
def test_bad_constructor_params(kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(ValueError, match=param) as info:
        Sort(**kwargs)
    assert "expected" in str(info.value) and "got" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs"),
    [{"max_age": 0}, {"min_hits": 0}, {"iou_threshold": 0}, {"iou_threshold": 1}, {"max_age": np.int64(4)}],
)
def test_boundary_constructor_params_are_accepted(kwargs: dict[str, object]) -> None:
    Sort(**kwargs)


@pytest.mark.parametrize(
    "dets",
    [
        pytest.param(np.zeros((3, 4)), id="4-columns"),
        pytest.param(np.zeros((3, 7)), id="7-columns"),
        pytest.param(np.zeros(5), id="1-D"),
        pytest.param(np.zeros((1, 2, 5)), id="3-D"),
        pytest.param(np.empty(0), id="empty-1-D"),
        pytest.param(np.array([["a", "b", "c", "d", "e"]]), id="strings"),
    ],
)
def test_bad_dets_shape(dets: np.ndarray) -> None:
    tracker = Sort()
    with pytest.raises(ValueError, match="dets"):
        tracker.update(dets)
    assert tracker.frame_count == 0
