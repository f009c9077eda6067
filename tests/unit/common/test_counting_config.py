"""Counting lines and zones in the job config: the issue's shape as written, and one clear line per mistake."""

from __future__ import annotations

import json

import pytest

from vidfleet_common.counting import MAX_LINES, check_class_names, polygon_problem
from vidfleet_common.errors import ConfigError
from vidfleet_common.job_config import JobConfig

ISSUE_EXAMPLE = {
    "lines": [{"name": "gate", "points": [[320, 0], [320, 480]], "classes": ["car"]}],
    "zones": [{"name": "dock", "polygon": [[0, 0], [200, 0], [200, 200], [0, 200]]}],
}


def test_the_issue_example_works_as_written() -> None:
    config = JobConfig.from_mapping(json.loads(json.dumps(ISSUE_EXAMPLE)))
    (gate,), (dock,) = config.lines, config.zones
    assert (gate.name, gate.points, gate.classes, gate.directions, gate.anchor) == ("gate", [[320, 0], [320, 480]], ["car"], ["in", "out"], "bottom_center")
    assert (dock.name, dock.polygon, dock.classes, dock.resolved_units) == ("dock", [[0, 0], [200, 0], [200, 200], [0, 200]], None, "px")
    assert config.counting and not JobConfig().counting
    # What result.json records is read back to the same config (the fleet sends it through JSON).
    assert JobConfig.from_mapping(json.loads(json.dumps(config.model_dump(mode="json")))) == config


def test_fractions_are_recognised_or_declared() -> None:
    auto = JobConfig.from_mapping({"lines": [{"name": "mid", "points": [[0.5, 0], [0.5, 1]]}]})
    assert auto.lines[0].resolved_units == "fraction"
    pixels = JobConfig.from_mapping({"zones": [{"name": "tiny", "polygon": [[0, 0], [1, 0], [1, 1]], "units": "px"}]})
    assert pixels.zones[0].resolved_units == "px"


LINE = {"name": "gate", "points": [[320, 0], [320, 480]]}
ZONE = {"name": "dock", "polygon": [[0, 0], [200, 0], [200, 200], [0, 200]]}


@pytest.mark.parametrize(
    ("config", "key", "fragment"),
    [
        ({"zones": [{**ZONE, "polygon": [[0, 0], [200, 200], [200, 0], [0, 200]]}]}, "zones.0.polygon", "self-intersecting polygon: edge 0 [[0, 0], [200, 200]] crosses edge 2"),
        ({"zones": [{**ZONE, "polygon": [[0, 0], [100, 0], [50, 0], [50, 50]]}]}, "zones.0.polygon", "fold back"),
        ({"zones": [{**ZONE, "polygon": [[0, 0], [10, 10], [20, 20]]}]}, "zones.0.polygon", "has no area"),
        ({"zones": [{**ZONE, "polygon": [[0, 0], [10, 10]]}]}, "zones.0.polygon", "3 to 100 points, got 2"),
        ({"zones": [{**ZONE, "polygon": [[0, 0], [5, 5], [5, 5], [0, 9]]}]}, "zones.0.polygon", "repeats the next one"),
        ({"lines": [{**LINE, "points": [[320, 10], [320, 10]]}]}, "lines.0.points", "degenerate line: its two points [[320, 10], [320, 10]] coincide"),
        ({"lines": [{**LINE, "points": [[320, 10]]}]}, "lines.0.points", "two points"),
        ({"lines": [{**LINE, "points": [[320, 10, 4], [1, 1]]}]}, "lines.0.points", "a point is [x, y]"),
        ({"lines": [{**LINE, "points": [[-1, 0], [320, 480]]}]}, "lines.0.points", "must not be negative"),
        ({"lines": [{**LINE, "points": [[0.5, 0], [1.5, 1]], "units": "fraction"}]}, "lines.0.points", "within [0, 1], got [1.5, 1]"),
        ({"lines": [{**LINE, "points": [["a", 0], [1, 1]]}]}, "lines.0.points.0.0", "a number"),
        ({"lines": [{**LINE, "classes": []}]}, "lines.0.classes", "1 to 100 class names"),
        ({"lines": [{**LINE, "classes": ["car", "car"]}]}, "lines.0.classes", "distinct"),
        ({"lines": [{**LINE, "classes": "car"}]}, "lines.0.classes", "a list"),
        ({"lines": [{**LINE, "name": "the gate"}]}, "lines.0.name", "letters, digits"),
        ({"lines": [{**LINE, "directions": ["in", "in"]}]}, "lines.0.directions", "two distinct direction names"),
        ({"lines": [{**LINE, "anchor": "feet"}]}, "lines.0.anchor", "'bottom_center'"),
        ({"lines": [{**LINE, "hysteresis": 2}]}, "lines.0.hysteresis", "less than or equal to 1"),
        ({"lines": [{**LINE, "colour": "red"}]}, "lines.0.colour", "unknown config key"),
        ({"lines": [LINE, LINE]}, "lines", "unique, repeated: gate"),
        ({"lines": [{**LINE, "name": f"l{i}"} for i in range(MAX_LINES + 1)]}, "lines", f"at most {MAX_LINES} lines"),
        ({"zones": [{**ZONE, "capacity": -1}]}, "zones.0.capacity", "greater than or equal to 0"),
        ({"zones": {"dock": ZONE}}, "zones", "a list"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(config: dict, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        JobConfig.from_mapping(config)
    message = str(caught.value)
    assert "\n" not in message and f"'{key}'" in message and fragment in message, message


def test_unknown_class_names_are_caught_once_the_model_is_known() -> None:
    config = JobConfig.from_mapping(ISSUE_EXAMPLE)
    with pytest.raises(ConfigError, match=r"config key 'lines.0.classes': unknown class 'car' \(model m.pt has circle, square, triangle\)"):
        check_class_names(config.lines, config.zones, {0: "circle", 1: "square", 2: "triangle"}, model="m.pt")
    check_class_names(config.lines, config.zones, {0: "person", 2: "car"}, model="yolo11n.pt")


@pytest.mark.parametrize(
    ("points", "simple"),
    [
        ([(0, 0), (10, 0), (10, 10), (0, 10)], True),
        ([(0, 0), (0, 10), (10, 10), (10, 0)], True),  # the other way round
        ([(0, 0), (10, 0), (5, 3), (10, 10), (0, 10)], True),  # concave
        ([(0, 0), (10, 0), (0, 10), (10, 10)], False),  # a bow tie
        ([(0, 0), (10, 0), (10, 10), (5, 0), (0, 10)], False),  # a vertex on another edge
    ],
)
def test_polygon_simplicity(points: list[tuple[float, float]], simple: bool) -> None:
    assert (polygon_problem(points) is None) is simple
