"""Lines and zones in pixels of one frame size, and the vectorised tests the counter runs every frame.

Plain numpy: per frame the counter needs, for M tracks, one signed distance per line and one per
zone (M x edges, a few dozen numbers), which numpy does in microseconds with no dependency that the
coordinator or the capture image would have to carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from vidfleet_common.counting import ANCHOR_POSITION, LineSpec, ZoneSpec
from vidfleet_common.errors import ConfigError


def anchor_points(boxes: np.ndarray, anchor: str) -> np.ndarray:
    """(M, 2) anchor points of (M, >=4) boxes x1, y1, x2, y2."""
    fx, fy = ANCHOR_POSITION[anchor]
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return np.stack([x1 + fx * (x2 - x1), y1 + fy * (y2 - y1)], axis=1)


@dataclass(frozen=True, eq=False)
class Line:
    """A counting line A->B in pixels."""

    spec: LineSpec
    a: np.ndarray
    b: np.ndarray

    @property
    def name(self) -> str:
        return self.spec.name

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(M,) distances in pixels: > 0 right of A->B on the picture (y down), < 0 left of it."""
        d = self.b - self.a
        rel = points - self.a
        return (d[0] * rel[:, 1] - d[1] * rel[:, 0]) / float(np.hypot(d[0], d[1]))

    def crossed_by(self, p: Sequence[float], q: Sequence[float]) -> bool:
        """Whether the move p -> q, from one side of the line to the other, passes between A and B."""
        dx, dy = self.b[0] - self.a[0], self.b[1] - self.a[1]
        mx, my = q[0] - p[0], q[1] - p[1]
        denominator = mx * dy - my * dx
        if denominator == 0:
            return False
        rx, ry = self.a[0] - p[0], self.a[1] - p[1]
        # Where the move meets the infinite line, as a fraction t of A->B (0 at A, 1 at B).
        t = (rx * my - ry * mx) / denominator
        return bool(0.0 <= t <= 1.0)


@dataclass(frozen=True, eq=False)
class Zone:
    """A counting zone in pixels: the polygon's vertices (K, 2)."""

    spec: ZoneSpec
    polygon: np.ndarray

    @property
    def name(self) -> str:
        return self.spec.name

    def signed_depth(self, points: np.ndarray) -> np.ndarray:
        """(M,) distance in pixels from each point to the zone's edge: > 0 inside, < 0 outside."""
        a = self.polygon
        b = np.roll(self.polygon, -1, axis=0)
        x, y = points[:, 0:1], points[:, 1:2]  # (M, 1) against (K,) edges
        ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
        # Even-odd rule: edges whose span in y holds the point, crossed to the right of it.
        spans = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = ax + (y - ay) * (bx - ax) / (by - ay)
        inside = (np.count_nonzero(spans & (x < x_at), axis=1) % 2) == 1
        # Distance to the nearest edge.
        ex, ey = bx - ax, by - ay
        length2 = ex * ex + ey * ey
        t = np.clip(((x - ax) * ex + (y - ay) * ey) / length2, 0.0, 1.0)
        distance = np.hypot(x - (ax + t * ex), y - (ay + t * ey)).min(axis=1)
        return np.where(inside, distance, -distance)


@dataclass(frozen=True)
class ResolvedGeometry:
    """A config's lines and zones in the pixels of one frame size."""

    width: int
    height: int
    lines: tuple[Line, ...]
    zones: tuple[Zone, ...]

    @cached_property
    def _line_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = np.array([line.a for line in self.lines]).reshape(-1, 2)
        d = np.array([line.b - line.a for line in self.lines]).reshape(-1, 2)
        return a, d, np.hypot(d[:, 0], d[:, 1])

    @cached_property
    def _edge_arrays(self) -> tuple[np.ndarray, ...]:
        """Every zone's edges end to end, and where each zone's start (for reduceat)."""
        starts = np.cumsum([0] + [len(zone.polygon) for zone in self.zones[:-1]])
        a = np.concatenate([zone.polygon for zone in self.zones]) if self.zones else np.empty((0, 2))
        b = np.concatenate([np.roll(zone.polygon, -1, axis=0) for zone in self.zones]) if self.zones else np.empty((0, 2))
        e = b - a
        return a[:, 0], a[:, 1], b[:, 1], e[:, 0], e[:, 1], e[:, 0] ** 2 + e[:, 1] ** 2, starts

    def line_distances(self, points: np.ndarray) -> np.ndarray:
        """(lines, M) Line.signed_distance of every line at once."""
        a, d, length = self._line_arrays
        rel_x = points[None, :, 0] - a[:, 0:1]
        rel_y = points[None, :, 1] - a[:, 1:2]
        return (d[:, 0:1] * rel_y - d[:, 1:2] * rel_x) / length[:, None]

    def zone_depths(self, points: np.ndarray) -> np.ndarray:
        """(zones, M) Zone.signed_depth of every zone at once: one pass over all their edges."""
        ax, ay, by, ex, ey, length2, starts = self._edge_arrays
        x, y = points[:, 0:1], points[:, 1:2]
        spans = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = ax + (y - ay) * ex / ey
        crossings = np.add.reduceat((spans & (x < x_at)).astype(np.int32), starts, axis=1)
        t = np.clip(((x - ax) * ex + (y - ay) * ey) / length2, 0.0, 1.0)
        distance = np.minimum.reduceat(np.hypot(x - (ax + t * ex), y - (ay + t * ey)), starts, axis=1)
        return np.where(crossings % 2 == 1, distance, -distance).T


def resolve(lines: list[LineSpec], zones: list[ZoneSpec], width: int, height: int) -> ResolvedGeometry:
    """Scale fractions to pixels; pixel coordinates outside the frame are a ConfigError naming the key."""
    resolved_lines = tuple(
        Line(spec, *_pixels(spec.points, spec.resolved_units, width, height, f"lines.{i}.points")) for i, spec in enumerate(lines)
    )
    resolved_zones = tuple(
        Zone(spec, np.array(_pixels(spec.polygon, spec.resolved_units, width, height, f"zones.{i}.polygon")))
        for i, spec in enumerate(zones)
    )
    return ResolvedGeometry(width, height, resolved_lines, resolved_zones)


def _pixels(points: list[list[float]], units: str, width: int, height: int, key: str) -> list[np.ndarray]:
    if units == "fraction":
        return [np.array([x * width, y * height], np.float64) for x, y in points]
    for x, y in points:
        if x > width or y > height:
            shown = [int(v) if float(v).is_integer() else v for v in (x, y)]
            raise ConfigError(f"config key '{key}': point {shown} is outside the {width}x{height} frame")
    return [np.array([x, y], np.float64) for x, y in points]
