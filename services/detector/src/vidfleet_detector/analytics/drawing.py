"""Draw counting lines and zones with their running counts on an annotated frame (OpenCV's built-in font)."""

from __future__ import annotations

import cv2
import numpy as np

from vidfleet_common.counts import Counts
from vidfleet_detector.analytics.geometry import ResolvedGeometry

_FONT = cv2.FONT_HERSHEY_SIMPLEX
LINE_COLOUR = (0, 215, 255)  # BGR amber
ZONE_COLOUR = (255, 140, 60)  # BGR azure
ZONE_FULL_COLOUR = (60, 60, 255)  # over capacity
_FILL_ALPHA = 0.18


def draw_counting(image: np.ndarray, geometry: ResolvedGeometry, counts: Counts) -> np.ndarray:
    """Zones (filled lightly, red when over capacity), lines with an arrow towards their first direction,
    and each one's running counts, drawn on `image` in place."""
    scale = max(0.4, min(image.shape[:2]) / 900)
    thickness = max(1, round(scale * 2))
    if geometry.zones:
        overlay = image.copy()
        for zone in geometry.zones:
            cv2.fillPoly(overlay, [np.round(zone.polygon).astype(np.int32)], _zone_colour(zone.spec.capacity, counts.zones[zone.name].inside))
        cv2.addWeighted(overlay, _FILL_ALPHA, image, 1 - _FILL_ALPHA, 0, dst=image)
    for zone in geometry.zones:
        zc = counts.zones[zone.name]
        colour = _zone_colour(zone.spec.capacity, zc.inside)
        pts = np.round(zone.polygon).astype(np.int32)
        cv2.polylines(image, [pts], True, colour, thickness, cv2.LINE_AA)
        capacity = f"/{zone.spec.capacity}" if zone.spec.capacity is not None else ""
        top = pts[np.argmin(pts[:, 1] * 10_000 + pts[:, 0])]
        _label(image, f"{zone.name}: {zc.inside}{capacity} inside, {zc.entries} in", (int(top[0]), int(top[1])), colour, scale)
    for line in geometry.lines:
        a, b = line.a, line.b
        p1, p2 = (int(round(a[0])), int(round(a[1]))), (int(round(b[0])), int(round(b[1])))
        cv2.line(image, p1, p2, LINE_COLOUR, thickness + 1, cv2.LINE_AA)
        direction = b - a
        normal = np.array([-direction[1], direction[0]]) / max(float(np.hypot(*direction)), 1e-9)  # towards the right of A->B
        middle = (a + b) / 2
        tip = middle + normal * 36 * scale
        cv2.arrowedLine(image, _int(middle), _int(tip), LINE_COLOUR, thickness + 1, cv2.LINE_AA, tipLength=0.3)
        first, second = line.spec.directions
        crossings = counts.lines[line.name].crossings
        (tw, th), _ = cv2.getTextSize(first, _FONT, scale * 0.8, 1)
        _label(image, first, _int(tip + normal * (tw / 2 + 6) + np.array([-tw / 2, th / 2 + 4])), LINE_COLOUR, scale * 0.8)
        start = a + direction / max(float(np.hypot(*direction)), 1e-9) * 14 * scale  # beside A, clear of the arrow
        _label(image, f"{line.name}: {first} {crossings[first]}  {second} {crossings[second]}", _int(start + np.array([4.0, 20.0 * scale])), LINE_COLOUR, scale)
    return image


def _zone_colour(capacity: int | None, inside: int) -> tuple[int, int, int]:
    return ZONE_FULL_COLOUR if capacity is not None and inside > capacity else ZONE_COLOUR


def _int(point: np.ndarray) -> tuple[int, int]:
    return int(round(float(point[0]))), int(round(float(point[1])))


def _label(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int], scale: float) -> None:
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    height, width = image.shape[:2]
    x = min(max(origin[0], 0), max(width - tw - 4, 0))
    y = min(max(origin[1] - th - base - 2, 0), max(height - th - base - 2, 0))
    cv2.rectangle(image, (x, y), (x + tw + 4, y + th + base + 2), colour, -1)
    cv2.putText(image, text, (x + 2, y + th + 1), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
