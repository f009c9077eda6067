"""Draw tracks on a frame with OpenCV's built-in Hershey font: no font file, no download."""

from __future__ import annotations

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_tracks(image: np.ndarray, tracks: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """Draw Sort.update's (M,7) rows on `image` in place: box, '#id class conf'."""
    scale = max(0.4, min(image.shape[:2]) / 900)
    thickness = max(1, round(scale * 2))
    for x1, y1, x2, y2, track_id, score, cls in tracks:
        colour = track_colour(int(track_id))
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(image, p1, p2, colour, thickness)
        name = names.get(int(cls), str(int(cls))) if cls >= 0 else ""
        label = f"#{int(track_id)} {name} {score:.2f}".replace("  ", " ")
        (tw, th), base = cv2.getTextSize(label, _FONT, scale, 1)
        top = max(p1[1] - th - base - 2, 0)
        cv2.rectangle(image, (p1[0], top), (p1[0] + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(image, label, (p1[0] + 2, top + th + 1), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return image
