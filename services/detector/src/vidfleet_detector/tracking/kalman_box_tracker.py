"""Constant-velocity Kalman filter over one bounding box, as in SORT (abewley/sort@2236dff).

Names, matrices and the order of operations follow the reference ``sort.py`` so the two
can be read side by side; any change to the arithmetic here changes tracker output.

State ``x`` is ``[u, v, s, r, u', v', s']``: box centre (u, v), area s, aspect ratio r
(width / height, assumed constant) and the velocities of u, v and s.
"""

from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter

__all__ = ["KalmanBoxTracker", "convert_bbox_to_z", "convert_x_to_bbox"]


def convert_bbox_to_z(bbox: np.ndarray) -> np.ndarray:
    """Map a box ``[x1, y1, x2, y2, ...]`` to the measurement ``[u, v, s, r]`` as a (4, 1) column."""
    w = bbox[2] - bbox[0]
    h = bbox[3] - bbox[1]
    x = bbox[0] + w / 2.0
    y = bbox[1] + h / 2.0
    s = w * h  # scale is just area
    r = w / float(h)
    return np.array([x, y, s, r]).reshape((4, 1))


def convert_x_to_bbox(x: np.ndarray, score: float | None = None) -> np.ndarray:
    """Map a state ``[u, v, s, r, ...]`` to a (1, 4) box ``[x1, y1, x2, y2]``, or (1, 5) with ``score``."""
    w = np.sqrt(x[2] * x[3])
    h = x[2] / w
    box = np.array([x[0] - w / 2.0, x[1] - h / 2.0, x[0] + w / 2.0, x[1] + h / 2.0]).reshape((1, 4))
    if score is None:
        return box
    # The reference builds this row with `score` inside np.array([...]), which modern numpy
    # rejects for a (7, 1) state; appending gives the same values.
    return np.append(box, [[score]], axis=1)


class KalmanBoxTracker:
    """Internal state of one tracked object observed as a bounding box.

    Unlike the reference, the id is not taken from a class-wide counter: the owner
    (normally a :class:`~vidfleet_detector.tracking.sort.Sort`) passes ``track_id``, so
    ids of one stream never depend on another. ``id`` is 0-based as in the reference;
    ``Sort`` reports ``id + 1``.

    ``det_score`` and ``det_class`` hold the score and class id (-1 when none was given)
    of the detection that created or last updated the track.
    """

    def __init__(self, bbox: np.ndarray, track_id: int) -> None:
        """Start a track from ``bbox`` = ``[x1, y1, x2, y2, score]`` or ``[x1, y1, x2, y2, score, class]``."""
        # define constant velocity model
        self.kf = KalmanFilter(dim_x=7, dim_z=4)
        self.kf.F = np.array(
            [
                [1, 0, 0, 0, 1, 0, 0],
                [0, 1, 0, 0, 0, 1, 0],
                [0, 0, 1, 0, 0, 0, 1],
                [0, 0, 0, 1, 0, 0, 0],
                [0, 0, 0, 0, 1, 0, 0],
                [0, 0, 0, 0, 0, 1, 0],
                [0, 0, 0, 0, 0, 0, 1],
            ]
        )
        self.kf.H = np.array(
            [
                [1, 0, 0, 0, 0, 0, 0],
                [0, 1, 0, 0, 0, 0, 0],
                [0, 0, 1, 0, 0, 0, 0],
                [0, 0, 0, 1, 0, 0, 0],
            ]
        )

        self.kf.R[2:, 2:] *= 10.0
        self.kf.P[4:, 4:] *= 1000.0  # give high uncertainty to the unobservable initial velocities
        self.kf.P *= 10.0
        self.kf.Q[-1, -1] *= 0.01
        self.kf.Q[4:, 4:] *= 0.01

        self.kf.x[:4] = convert_bbox_to_z(bbox)
        self.time_since_update = 0
        self.id = int(track_id)
        self.history: list[np.ndarray] = []
        self.hits = 0
        self.hit_streak = 0
        self.age = 0
        self.det_score, self.det_class = _score_and_class(bbox)

    def update(self, bbox: np.ndarray) -> None:
        """Update the state with an observed box (same layout as in ``__init__``)."""
        self.time_since_update = 0
        self.history = []
        self.hits += 1
        self.hit_streak += 1
        self.kf.update(convert_bbox_to_z(bbox))
        self.det_score, self.det_class = _score_and_class(bbox)

    def predict(self) -> np.ndarray:
        """Advance the state one frame and return the predicted box as a (1, 4) array."""
        # Keep the predicted area from going negative: drop the area velocity instead.
        if (self.kf.x[6] + self.kf.x[2]) <= 0:
            self.kf.x[6] *= 0.0
        self.kf.predict()
        self.age += 1
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1
        self.history.append(convert_x_to_bbox(self.kf.x))
        return self.history[-1]

    def get_state(self) -> np.ndarray:
        """Return the current box estimate as a (1, 4) array ``[x1, y1, x2, y2]``."""
        return convert_x_to_bbox(self.kf.x)


def _score_and_class(bbox: np.ndarray) -> tuple[float, float]:
    score = float(bbox[4]) if len(bbox) > 4 else float("nan")
    det_class = float(bbox[5]) if len(bbox) > 5 else -1.0
    return score, det_class
