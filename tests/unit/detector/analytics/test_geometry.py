"""The geometry the counter relies on: sides, crossings of the segment, depth in a polygon, scaling to a frame."""

from __future__ import annotations

import numpy as np
import pytest

from vidfleet_common.errors import ConfigError
from vidfleet_common.job_config import JobConfig
from vidfleet_detector.analytics.geometry import anchor_points, resolve


def geometry(width: int = 640, height: int = 480, **config: object):
    parsed = JobConfig.from_mapping(config)
    return resolve(parsed.lines, parsed.zones, width, height)


def test_signed_distance_is_positive_right_of_a_to_b_as_seen_on_the_picture() -> None:
    (down,) = geometry(lines=[{"name": "d", "points": [[320, 0], [320, 480]]}]).lines
    assert down.signed_distance(np.array([[300.0, 10], [350.0, 400]])).tolist() == [20.0, -30.0]
    (across,) = geometry(lines=[{"name": "a", "points": [[0, 240], [640, 240]]}]).lines
    assert across.signed_distance(np.array([[5.0, 250], [5.0, 200]])).tolist() == [10.0, -40.0]


@pytest.mark.parametrize(
    ("p", "q", "crossed"),
    [((300, 250), (340, 250), True), ((300, 100), (340, 100), False), ((300, 399), (340, 401), True), ((300, 380), (340, 420), True), ((300, 500), (340, 500), False)],
)
def test_a_move_crosses_only_between_the_ends(p: tuple, q: tuple, crossed: bool) -> None:
    (door,) = geometry(lines=[{"name": "door", "points": [[320, 200], [320, 400]]}]).lines
    assert door.crossed_by(np.array(p, float), np.array(q, float)) is crossed


def test_depth_in_a_polygon() -> None:
    (zone,) = geometry(zones=[{"name": "z", "polygon": [[100, 100], [300, 100], [300, 300], [100, 300]]}]).zones
    depth = zone.signed_depth(np.array([[200.0, 200], [110, 200], [90, 200], [400, 400], [300, 200]]))
    assert depth.tolist() == pytest.approx([100, 10, -10, -np.hypot(100, 100), 0])


def test_anchor_points() -> None:
    boxes = np.array([[10.0, 20, 50, 100, 1, 0.9, 0]])
    assert anchor_points(boxes, "bottom_center").tolist() == [[30.0, 100.0]]
    assert anchor_points(boxes, "center").tolist() == [[30.0, 60.0]]
    assert anchor_points(boxes, "top_left").tolist() == [[10.0, 20.0]]


def test_fractions_scale_and_pixels_outside_the_frame_name_the_key() -> None:
    (zone,) = geometry(1280, 720, zones=[{"name": "z", "polygon": [[0, 0], [0.5, 0], [0.5, 0.5]]}]).zones
    assert zone.polygon.tolist() == [[0, 0], [640, 0], [640, 360]]
    issue = {"lines": [{"name": "gate", "points": [[320, 0], [320, 480]]}], "zones": [{"name": "dock", "polygon": [[0, 0], [200, 0], [200, 200], [0, 200]]}]}
    geometry(640, 480, **issue)  # the frame's own corner (640, 480) is inside it
    with pytest.raises(ConfigError, match=r"^config key 'lines.0.points': point \[320, 480\] is outside the 320x240 frame$"):
        geometry(320, 240, **issue)
    with pytest.raises(ConfigError, match=r"^config key 'zones.0.polygon': point \[200, 200\] is outside the 640x100 frame$"):
        geometry(640, 100, zones=issue["zones"])
