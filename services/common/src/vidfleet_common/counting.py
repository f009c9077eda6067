"""Counting lines and zones: what a job config or a stream's config defines, validated without a frame.

A definition is checked here for everything that does not need the video: its shape (a line is two
distinct points, a zone a simple polygon with an area), its names, its coordinates (fractions within
[0, 1], pixels not negative). What needs the video or the model is checked by the detector once it has
them, with the same one-line errors: pixel coordinates outside the frame (`ResolvedGeometry` in
vidfleet_detector.analytics), class names the model does not know (`check_class_names` below).

Pure Python on purpose: the coordinator validates configs and must stay light; the polygons are
small (at most MAX_POLYGON_POINTS vertices), so the O(n^2) simplicity check costs microseconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from vidfleet_common.errors import ConfigError

# Bounds that keep Prometheus cardinality and per-frame work small (docs/counting.md, "Cardinality").
MAX_LINES = 16
MAX_ZONES = 16
MAX_CLASS_LABELS = 8  # class_name values per line or zone in metrics; the rest are summed as "other"
MAX_BATCH_NAMES = 64  # line (and zone) names a batch worker labels; further names are summed as "other"
OTHER = "other"
MAX_POLYGON_POINTS = 100
MAX_CLASSES = 100

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
NAME_RULE = "1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"

Anchor = Literal[
    "bottom_center", "center", "top_center", "center_left", "center_right", "bottom_left", "bottom_right", "top_left", "top_right"
]
#: Where each anchor lies in its box, as fractions of the box's width and height from its top-left corner.
ANCHOR_POSITION: dict[str, tuple[float, float]] = {
    "bottom_center": (0.5, 1.0), "center": (0.5, 0.5), "top_center": (0.5, 0.0),
    "center_left": (0.0, 0.5), "center_right": (1.0, 0.5),
    "bottom_left": (0.0, 1.0), "bottom_right": (1.0, 1.0), "top_left": (0.0, 0.0), "top_right": (1.0, 0.0),
}
Units = Literal["px", "fraction"]

_MIN_LENGTH = {"px": 1.0, "fraction": 1e-3}


class _Definition(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(description=f"Unique among the lines (or the zones): {NAME_RULE}.")
    classes: list[str] | None = Field(None, description="Count only these class names (the model's); null = every class.")
    anchor: Anchor = Field(
        "bottom_center",
        description="The point of a track's box that must cross or enter: bottom_center (the feet), center, top_center, "
        "center_left, center_right, bottom_left, bottom_right, top_left or top_right.",
    )
    hysteresis: float = Field(
        0.1, ge=0.0, le=1.0,
        description="Dead band against jitter, as a fraction of the track's box height: the anchor must get this far past "
        "the line (or the zone's edge) to change side.",
    )
    units: Units | None = Field(None, description="px or fraction (of the frame's width and height); null: fraction when every coordinate is within [0, 1].")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"a name is {NAME_RULE}, got {value!r}")
        return value

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value or len(value) > MAX_CLASSES:
            raise ValueError(f"list 1 to {MAX_CLASSES} class names (or null for every class), got {len(value)}")
        if len(set(value)) != len(value) or not all(name.strip() for name in value):
            raise ValueError(f"class names must be distinct and not empty, got {value}")
        return value

    def coordinates(self) -> list[list[float]]:
        raise NotImplementedError

    @property
    def resolved_units(self) -> Units:
        """The units of the coordinates: as given, or fraction when every one is within [0, 1]."""
        return _units(self.coordinates(), self.units)


class LineSpec(_Definition):
    """A counting line: a segment from `points[0]` (A) to `points[1]` (B)."""

    points: list[list[float]] = Field(description="Two points [[x, y], [x, y]]: A, then B.")
    directions: list[str] = Field(
        ["in", "out"],
        description="Names of the two crossing directions: the first for a crossing from the left of A->B to its right "
        "(as seen on the picture, y pointing down), the second for the other way.",
    )

    @field_validator("points")
    @classmethod
    def _points(cls, value: list[list[float]], info: ValidationInfo) -> list[list[float]]:
        if len(value) != 2:
            raise ValueError(f"a line is two points [[x, y], [x, y]], got {len(value)} points")
        units = _units(_check_points(value, info.data.get("units")), info.data.get("units"))
        (ax, ay), (bx, by) = value
        if math.hypot(bx - ax, by - ay) < _MIN_LENGTH[units]:
            raise ValueError(f"a degenerate line: its two points {_shown(value)} coincide")
        return value

    @field_validator("directions")
    @classmethod
    def _directions(cls, value: list[str]) -> list[str]:
        if len(value) != 2 or value[0] == value[1] or not all(NAME.match(v) for v in value):
            raise ValueError(f"two distinct direction names ({NAME_RULE}), got {value}")
        return value

    def coordinates(self) -> list[list[float]]:
        return self.points


class ZoneSpec(_Definition):
    """A counting zone: a simple polygon (no edge crossing another), given by its vertices in order."""

    polygon: list[list[float]] = Field(description=f"3 to {MAX_POLYGON_POINTS} vertices [[x, y], ...], in order (either way round); closed implicitly.")
    capacity: int | None = Field(
        None, ge=0, description="Objects the zone may hold: exported as vidfleet_zone_capacity for the over-capacity alert (0: must stay empty)."
    )

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: list[list[float]], info: ValidationInfo) -> list[list[float]]:
        if not 3 <= len(value) <= MAX_POLYGON_POINTS:
            raise ValueError(f"a zone is a polygon of 3 to {MAX_POLYGON_POINTS} points, got {len(value)}")
        problem = polygon_problem([(p[0], p[1]) for p in _check_points(value, info.data.get("units"))])
        if problem:
            raise ValueError(problem)
        return value

    def coordinates(self) -> list[list[float]]:
        return self.polygon


def _units(points: list[list[float]], units: Units | None) -> Units:
    if units is not None:
        return units
    return "fraction" if all(0.0 <= v <= 1.0 for p in points for v in p) else "px"


def _check_points(points: list[list[float]], units: Units | None) -> list[list[float]]:
    for point in points:
        if len(point) != 2:
            raise ValueError(f"a point is [x, y], got {_shown([point])[1:-1]}")
        if not all(math.isfinite(v) for v in point):
            raise ValueError(f"coordinates must be finite numbers, got {_shown([point])[1:-1]}")
        if any(v < 0 for v in point):
            raise ValueError(f"coordinates must not be negative (the frame's top-left corner is [0, 0]), got {_shown([point])[1:-1]}")
        if units == "fraction" and max(point) > 1:
            raise ValueError(f"fractions of the frame are within [0, 1], got {_shown([point])[1:-1]}")
    return points


def check_definitions(lines: Sequence[_Definition], zones: Sequence[_Definition]) -> None:
    """Counts and names that only make sense across the whole list (raises ValueError for pydantic)."""
    for what, items, limit in (("lines", lines, MAX_LINES), ("zones", zones, MAX_ZONES)):
        if len(items) > limit:
            raise ValueError(f"at most {limit} {what} per config (the cardinality cap), got {len(items)}")
        names = [item.name for item in items]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{what} names must be unique, repeated: {', '.join(repeated)}")


# ---- polygons ------------------------------------------------------------------------------------------------

Point = tuple[float, float]


def _orientation(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_intersect(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether the closed segments a-b and c-d share a point (touching counts)."""
    d1, d2 = _orientation(c, d, a), _orientation(c, d, b)
    d3, d4 = _orientation(a, b, c), _orientation(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _on_segment(c, d, a)) or (d2 == 0 and _on_segment(c, d, b))
        or (d3 == 0 and _on_segment(a, b, c)) or (d4 == 0 and _on_segment(a, b, d))
    )


def polygon_area(points: Sequence[Point]) -> float:
    """Signed area (shoelace)."""
    return 0.5 * sum(points[i - 1][0] * p[1] - p[0] * points[i - 1][1] for i, p in enumerate(points))


def polygon_problem(points: Sequence[Point]) -> str | None:
    """Why `points` is not a simple polygon with an area, or None when it is."""
    n = len(points)
    for i in range(n):
        if points[i] == points[(i + 1) % n]:
            return f"a degenerate polygon: point {i} {_shown([points[i]])[1:-1]} repeats the next one"
    if all(_orientation(points[0], points[1], p) == 0 for p in points[2:]):
        return "a degenerate polygon: it has no area (its points are in a line)"
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        a, b = edges[i]
        c = edges[(i + 1) % n][1]
        # Adjacent edges share a vertex; they overlap only when they fold back on each other.
        if _orientation(a, b, c) == 0 and (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]) < 0:
            return f"a self-intersecting polygon: its edges at point {(i + 1) % n} {_shown([b])[1:-1]} fold back on each other"
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # the closing edge is adjacent to the first
            if segments_intersect(a, b, *edges[j]):
                return f"a self-intersecting polygon: edge {i} {_shown(edges[i])} crosses edge {j} {_shown(edges[j])}"
    if abs(polygon_area(points)) < 1e-9:
        return "a degenerate polygon: it has no area (its points are in a line)"
    return None


def _shown(points: Iterable[Sequence[float]]) -> str:
    """Points as a user wrote them: [[320, 0], [320, 480]], not [[320.0, 0.0], ...]."""
    return "[" + ", ".join("[" + ", ".join(f"{v:g}" for v in p) + "]" for p in points) + "]"


def check_class_names(lines: Iterable[_Definition], zones: Iterable[_Definition], names: Mapping[int, str], *, model: str) -> None:
    """Raise ConfigError naming the key of the first class a definition limits to that the model does not know."""
    known = set(names.values())
    for what, items in (("lines", lines), ("zones", zones)):
        for index, item in enumerate(items):
            unknown = [c for c in item.classes or () if c not in known]
            if unknown:
                listed = sorted(known)
                shown = ", ".join(listed[:12]) + (f", ... ({len(listed)} in all)" if len(listed) > 12 else "")
                raise ConfigError(f"config key '{what}.{index}.classes': unknown class '{unknown[0]}' (model {model} has {shown})")
