"""Box <-> state conversions and KalmanBoxTracker (vidfleet_detector.tracking.kalman_box_tracker)."""

from __future__ import annotations

import numpy as np
import pytest

from vidfleet_detector.tracking import KalmanBoxTracker, convert_bbox_to_z, convert_x_to_bbox


def test_convert_bbox_to_z_values() -> None:
    z = convert_bbox_to_z(np.array([10.0, 20.0, 50.0, 100.0, 0.9]))
    assert z.shape == (4, 1)
    np.testing.assert_allclose(z.ravel(), [30.0, 60.0, 3200.0, 0.5])


@pytest.mark.parametrize(
    "box",
    [
        [10.0, 20.0, 50.0, 100.0],
        [0.0, 0.0, 1.0, 1.0],
        [748.744, 152.562, 781.185, 207.683],
        [291.557, 192.468, 331.051, 311.695],
        [-5.5, -3.25, 100.0, 7.0],
    ],
)
def test_bbox_z_round_trip(box: list[float]) -> None:
    back = convert_x_to_bbox(convert_bbox_to_z(np.array(box)))
    assert back.shape == (1, 4)
    np.testing.assert_allclose(back[0], box, rtol=0, atol=1e-9)


def test_convert_x_to_bbox_with_score() -> None:
    out = convert_x_to_bbox(convert_bbox_to_z(np.array([0.0, 0.0, 4.0, 2.0])), score=0.75)
    assert out.shape == (1, 5)
    np.testing.assert_allclose(out[0], [0.0, 0.0, 4.0, 2.0, 0.75])


def test_new_tracker_state() -> None:
    trk = KalmanBoxTracker(np.array([10.0, 20.0, 50.0, 100.0, 0.9, 3.0]), track_id=7)
    assert trk.id == 7
    assert (trk.time_since_update, trk.hits, trk.hit_streak, trk.age) == (0, 0, 0, 0)
    assert trk.det_score == pytest.approx(0.9)
    assert trk.det_class == 3.0
    np.testing.assert_allclose(trk.get_state()[0], [10.0, 20.0, 50.0, 100.0])
    # reference filter settings
    np.testing.assert_allclose(np.diag(trk.kf.R), [1, 1, 10, 10])
    np.testing.assert_allclose(np.diag(trk.kf.P), [10, 10, 10, 10, 10000, 10000, 10000])
    np.testing.assert_allclose(np.diag(trk.kf.Q), [1, 1, 1, 1, 0.01, 0.01, 0.0001])


def test_tracker_without_class_column_has_class_minus_one() -> None:
    trk = KalmanBoxTracker(np.array([10.0, 20.0, 50.0, 100.0, 0.4]), track_id=0)
    assert trk.det_class == -1.0
    assert trk.det_score == pytest.approx(0.4)


def test_predict_and_update_counters() -> None:
    box = np.array([10.0, 20.0, 50.0, 100.0, 0.9])
    trk = KalmanBoxTracker(box, track_id=0)
    predicted = trk.predict()
    assert predicted.shape == (1, 4)
    np.testing.assert_allclose(predicted[0], box[:4])  # zero initial velocity
    assert (trk.age, trk.time_since_update, trk.hit_streak) == (1, 1, 0)
    trk.update(np.array([12.0, 20.0, 52.0, 100.0, 0.8, 2.0]))
    assert (trk.time_since_update, trk.hits, trk.hit_streak) == (0, 1, 1)
    assert trk.history == []
    assert trk.det_score == pytest.approx(0.8) and trk.det_class == 2.0
    # two predictions without an update: the second resets the streak
    trk.predict()
    trk.predict()
    assert (trk.time_since_update, trk.hit_streak, trk.age) == (2, 0, 3)
    assert len(trk.history) == 2


def test_predict_zeroes_area_velocity_that_would_make_area_negative() -> None:
    trk = KalmanBoxTracker(np.array([0.0, 0.0, 10.0, 10.0, 1.0]), track_id=0)
    trk.kf.x[6] = -150.0  # area is 100
    trk.predict()
    assert trk.kf.x[6, 0] == 0.0
    assert trk.kf.x[2, 0] == pytest.approx(100.0)
