"""Matching detections to predicted track boxes by IoU, as in SORT (abewley/sort@2236dff)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["associate_detections_to_trackers", "iou_batch", "linear_assignment"]


def linear_assignment(cost_matrix: np.ndarray) -> np.ndarray:
    """Minimum-cost assignment; returns a (K, 2) int array of ``[row, col]`` pairs.

    Always scipy's ``linear_sum_assignment``. The reference prefers ``lap.lapjv`` when
    ``lap`` is importable; its golden output was produced with the scipy fallback, and
    the two solvers can break ties differently (which renames tracks), so we never use lap.
    """
    x, y = linear_sum_assignment(cost_matrix)
    return np.array(list(zip(x, y)))


def iou_batch(bb_test: np.ndarray, bb_gt: np.ndarray) -> np.ndarray:
    """IoU of every box in ``bb_test`` (N, >=4) with every box in ``bb_gt`` (M, >=4): an (N, M) array.

    Boxes are ``[x1, y1, x2, y2, ...]``; columns past the fourth are ignored.
    """
    bb_gt = np.expand_dims(bb_gt, 0)
    bb_test = np.expand_dims(bb_test, 1)

    xx1 = np.maximum(bb_test[..., 0], bb_gt[..., 0])
    yy1 = np.maximum(bb_test[..., 1], bb_gt[..., 1])
    xx2 = np.minimum(bb_test[..., 2], bb_gt[..., 2])
    yy2 = np.minimum(bb_test[..., 3], bb_gt[..., 3])
    w = np.maximum(0.0, xx2 - xx1)
    h = np.maximum(0.0, yy2 - yy1)
    wh = w * h
    o = wh / (
        (bb_test[..., 2] - bb_test[..., 0]) * (bb_test[..., 3] - bb_test[..., 1])
        + (bb_gt[..., 2] - bb_gt[..., 0]) * (bb_gt[..., 3] - bb_gt[..., 1])
        - wh
    )
    return o


def associate_detections_to_trackers(
    detections: np.ndarray, trackers: np.ndarray, iou_threshold: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assign detections to tracked objects (both given as boxes ``[x1, y1, x2, y2, ...]``).

    Returns ``(matches, unmatched_detections, unmatched_trackers)``: a (K, 2) int array of
    ``[detection_index, tracker_index]`` and two 1-D index arrays. The order of the
    unmatched detections matters (new tracks get ids in that order) and is the reference's:
    never-assigned ones ascending, then those whose assignment fell below ``iou_threshold``.
    """
    if len(trackers) == 0:
        return np.empty((0, 2), dtype=int), np.arange(len(detections)), np.empty((0, 5), dtype=int)

    iou_matrix = iou_batch(detections, trackers)

    if min(iou_matrix.shape) > 0:
        a = (iou_matrix > iou_threshold).astype(np.int32)
        # Unambiguous case: every row and column has at most one candidate, no solver needed.
        if a.sum(1).max() == 1 and a.sum(0).max() == 1:
            matched_indices = np.stack(np.where(a), axis=1)
        else:
            matched_indices = linear_assignment(-iou_matrix)
    else:
        matched_indices = np.empty(shape=(0, 2))

    unmatched_detections = []
    for d, _det in enumerate(detections):
        if d not in matched_indices[:, 0]:
            unmatched_detections.append(d)
    unmatched_trackers = []
    for t, _trk in enumerate(trackers):
        if t not in matched_indices[:, 1]:
            unmatched_trackers.append(t)

    # filter out matched with low IOU
    matches = []
    for m in matched_indices:
        if iou_matrix[m[0], m[1]] < iou_threshold:
            unmatched_detections.append(m[0])
            unmatched_trackers.append(m[1])
        else:
            matches.append(m.reshape(1, 2))
    if len(matches) == 0:
        matches = np.empty((0, 2), dtype=int)
    else:
        matches = np.concatenate(matches, axis=0)

    return matches, np.array(unmatched_detections), np.array(unmatched_trackers)
