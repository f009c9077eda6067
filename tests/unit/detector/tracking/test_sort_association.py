"""IoU and detection-to-track association (vidfleet_detector.tracking.association)."""

from __future__ import annotations

import numpy as np
import pytest

from vidfleet_detector.tracking import associate_detections_to_trackers, iou_batch, linear_assignment


@pytest.mark.parametrize(
    ("box_a", "box_b", "expected"),
    [
        pytest.param([0, 0, 2, 2], [0, 0, 2, 2], 1.0, id="identical"),
        pytest.param([0, 0, 2, 2], [5, 5, 7, 7], 0.0, id="disjoint"),
        pytest.param([0, 0, 1, 1], [1, 0, 2, 1], 0.0, id="touching-edge"),
        pytest.param([0, 0, 2, 2], [1, 1, 3, 3], 1 / 7, id="corner-overlap"),
        pytest.param([0, 0, 2, 2], [1, 0, 3, 2], 1 / 3, id="half-overlap"),
        pytest.param([0, 0, 4, 4], [1, 1, 3, 3], 0.25, id="contained"),
        pytest.param([10.5, 20.0, 30.5, 60.0], [20.5, 20.0, 40.5, 60.0], 1 / 3, id="fractional"),
    ],
)
def test_iou_batch_known_values(box_a: list[float], box_b: list[float], expected: float) -> None:
    iou = iou_batch(np.array([box_a], dtype=float), np.array([box_b], dtype=float))
    assert iou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(expected)
    # symmetric
    assert iou_batch(np.array([box_b], dtype=float), np.array([box_a], dtype=float))[0, 0] == pytest.approx(expected)


def test_iou_batch_shape_and_extra_columns_ignored() -> None:
    dets = np.array([[0, 0, 2, 2, 0.9], [1, 1, 3, 3, 0.1], [9, 9, 10, 10, 0.5]], dtype=float)
    trks = np.array([[0, 0, 2, 2, 0], [1, 1, 3, 3, 0]], dtype=float)
    iou = iou_batch(dets, trks)
    assert iou.shape == (3, 2)
    np.testing.assert_allclose(iou, [[1, 1 / 7], [1 / 7, 1], [0, 0]])


def test_linear_assignment_returns_row_col_pairs() -> None:
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    pairs = linear_assignment(cost)
    assert pairs.shape == (3, 2)
    assert cost[pairs[:, 0], pairs[:, 1]].sum() == 5.0


def test_associate_with_no_trackers_leaves_all_detections_unmatched() -> None:
    dets = np.array([[0, 0, 2, 2, 1], [5, 5, 7, 7, 1]], dtype=float)
    matches, unmatched_dets, unmatched_trks = associate_detections_to_trackers(dets, np.empty((0, 5)))
    assert matches.shape == (0, 2)
    assert unmatched_dets.tolist() == [0, 1]
    assert len(unmatched_trks) == 0


def test_associate_with_no_detections_leaves_all_trackers_unmatched() -> None:
    trks = np.array([[0, 0, 2, 2, 0], [5, 5, 7, 7, 0]], dtype=float)
    matches, unmatched_dets, unmatched_trks = associate_detections_to_trackers(np.empty((0, 5)), trks)
    assert matches.shape == (0, 2)
    assert len(unmatched_dets) == 0
    assert unmatched_trks.tolist() == [0, 1]


def test_associate_unambiguous_matches() -> None:
    dets = np.array([[5, 5, 7, 7, 1], [0, 0, 2, 2, 1], [20, 20, 22, 22, 1]], dtype=float)
    trks = np.array([[0, 0, 2, 2, 0], [5, 5, 7.1, 7, 0]], dtype=float)
    matches, unmatched_dets, unmatched_trks = associate_detections_to_trackers(dets, trks, 0.3)
    assert sorted(map(tuple, matches.tolist())) == [(0, 1), (1, 0)]
    assert unmatched_dets.tolist() == [2]
    assert len(unmatched_trks) == 0


def test_associate_ambiguous_uses_assignment_maximising_iou() -> None:
    # Both detections overlap both trackers above threshold; the optimum pairs them crosswise.
    trks = np.array([[0, 0, 10, 10, 0], [2, 0, 12, 10, 0]], dtype=float)
    dets = np.array([[2, 0, 12, 10, 1], [0, 0, 10, 10, 1]], dtype=float)
    matches, unmatched_dets, unmatched_trks = associate_detections_to_trackers(dets, trks, 0.3)
    assert sorted(map(tuple, matches.tolist())) == [(0, 1), (1, 0)]
    assert len(unmatched_dets) == 0 and len(unmatched_trks) == 0


def test_associate_low_iou_assignment_is_rejected_in_reference_order() -> None:
    # The solver pairs det 0 with the tracker (IoU 1/7 < 0.3); det 1 is never assigned.
    # The reference lists never-assigned detections first, then rejected ones: [1, 0].
    trks = np.array([[0, 0, 2, 2, 0]], dtype=float)
    dets = np.array([[1, 1, 3, 3, 1], [50, 50, 52, 52, 1]], dtype=float)
    matches, unmatched_dets, unmatched_trks = associate_detections_to_trackers(dets, trks, 0.3)
    assert matches.shape == (0, 2)
    assert unmatched_dets.tolist() == [1, 0]
    assert unmatched_trks.tolist() == [0]


@pytest.mark.parametrize(
    ("threshold", "matched"), [(0.0, True), (1 / 7 - 1e-9, True), (1 / 7 + 1e-9, False), (1.0, False)]
)
def test_associate_threshold(threshold: float, matched: bool) -> None:
    trks = np.array([[0, 0, 2, 2, 0]], dtype=float)
    dets = np.array([[1, 1, 3, 3, 1]], dtype=float)
    matches, _, _ = associate_detections_to_trackers(dets, trks, threshold)
    assert (len(matches) == 1) is matched
