"""SORT: Simple Online and Realtime Tracking (Bewley et al. 2016), after abewley/sort@2236dff.

``Sort.update`` reproduces the reference ``Sort.update`` step for step; columns 0..4 of
its result are exactly the reference output. Differences, none of which changes those
columns:

* track ids come from a counter owned by each ``Sort`` instance (the reference uses a
  class attribute shared by the whole process), so every stream starts at id 1;
* detections may carry a class id in a sixth column, and the result has two more
  columns: the score and class id (-1 when none) of the detection matched this frame;
* parameters and the detection array are validated.
"""

from __future__ import annotations

import numbers

import numpy as np

from .association import associate_detections_to_trackers
from .kalman_box_tracker import KalmanBoxTracker

__all__ = ["OUTPUT_COLUMNS", "Sort"]

#: Columns of the array returned by :meth:`Sort.update`.
OUTPUT_COLUMNS = ("x1", "y1", "x2", "y2", "track_id", "score", "class_id")


class Sort:
    """Multi-object tracker for one stream of per-frame detections."""

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3, *, first_id: int = 1) -> None:
        """Set key parameters for SORT.

        ``max_age``: frames a track may go without a matching detection before it is dropped.
        ``min_hits``: consecutive matched frames before a track is reported (every track is
        reported during the first ``min_hits`` frames of the stream).
        ``iou_threshold``: minimum IoU for a detection to match a track's predicted box.
        ``first_id``: the id of the first track (a live stream's new tracker continues its predecessor's ids).
        """
        self.max_age = _check_count("max_age", max_age)
        self.min_hits = _check_count("min_hits", min_hits)
        self.iou_threshold = _check_threshold("iou_threshold", iou_threshold)
        self.trackers: list[KalmanBoxTracker] = []
        self.frame_count = 0
        if _check_count("first_id", first_id) < 1:
            raise ValueError(f"Sort parameter 'first_id': expected an integer >= 1, got {first_id!r}")
        self._next_id = int(first_id) - 1  # 0-based, like KalmanBoxTracker.count in the reference

    @property
    def next_id(self) -> int:
        """The id the next new track will get."""
        return self._next_id + 1

    @property
    def track_ids(self) -> set[int]:
        """Ids of every live track, reported this frame or not (a track not among them has ended)."""
        return {trk.id + 1 for trk in self.trackers}

    @property
    def active_tracks(self) -> int:
        """Number of live trackers, reported or not."""
        return len(self.trackers)

    def update(self, dets: np.ndarray | None = None) -> np.ndarray:
        """Advance one frame.

        ``dets``: (N, 5) ``[x1, y1, x2, y2, score]`` or (N, 6) with a class id in column 5;
        pass ``None`` or an empty (0, 5) array for a frame without detections. Call it once
        per frame, even when there are no detections.

        Returns an (M, 7) float array ``[x1, y1, x2, y2, track_id, score, class_id]``, one
        row per track reported this frame (see ``OUTPUT_COLUMNS``); ``class_id`` is -1 when
        the detections had no class column. The number of rows may differ from N.
        """
        dets = _check_dets(dets)
        self.frame_count += 1
        # get predicted locations from existing trackers.
        trks = np.zeros((len(self.trackers), 5))
        to_del = []
        ret = []
        for t, trk in enumerate(trks):
            pos = self.trackers[t].predict()[0]
            trk[:] = [pos[0], pos[1], pos[2], pos[3], 0]
            if np.any(np.isnan(pos)):
                to_del.append(t)
        trks = np.ma.compress_rows(np.ma.masked_invalid(trks))
        for t in reversed(to_del):
            self.trackers.pop(t)
        matched, unmatched_dets, unmatched_trks = associate_detections_to_trackers(dets, trks, self.iou_threshold)

        # update matched trackers with assigned detections
        for m in matched:
            self.trackers[m[1]].update(dets[m[0], :])

        # create and initialise new trackers for unmatched detections
        for i in unmatched_dets:
            trk = KalmanBoxTracker(dets[i, :], track_id=self._next_id)
            self._next_id += 1
            self.trackers.append(trk)
        i = len(self.trackers)
        for trk in reversed(self.trackers):
            d = trk.get_state()[0]
            if (trk.time_since_update < 1) and (trk.hit_streak >= self.min_hits or self.frame_count <= self.min_hits):
                # +1 as MOT benchmark requires positive ids
                ret.append(np.concatenate((d, [trk.id + 1, trk.det_score, trk.det_class])).reshape(1, -1))
            i -= 1
            # remove dead tracklet
            if trk.time_since_update > self.max_age:
                self.trackers.pop(i)
        if len(ret) > 0:
            return np.concatenate(ret)
        return np.empty((0, len(OUTPUT_COLUMNS)))


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"Sort parameter '{name}': expected an integer >= 0, got {value!r} ({type(value).__name__})")
    return int(value)


def _check_threshold(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(
            f"Sort parameter '{name}': expected a number in [0, 1], got {value!r} ({type(value).__name__})"
        )
    return float(value)


def _check_dets(dets: np.ndarray | None) -> np.ndarray:
    if dets is None:
        return np.empty((0, 5))
    arr = np.asarray(dets)
    if arr.ndim != 2 or arr.shape[1] not in (5, 6):
        raise ValueError(
            "Sort.update 'dets': expected a 2-D array with 5 columns [x1, y1, x2, y2, score] "
            f"or 6 columns [x1, y1, x2, y2, score, class_id], got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"Sort.update 'dets': expected a real numeric array, got dtype {arr.dtype}")
    # The reference works in float64; other dtypes would change the arithmetic.
    return arr.astype(np.float64, copy=False)
