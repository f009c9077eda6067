"""A scene of moving, occluding shapes on a textured background, with exact ground truth.

Everything is drawn with OpenCV from a seeded ``np.random.Generator``, so the same seed always
gives the same frames. Ground truth is computed from per-object masks:

* ``box`` is the tight box of the whole shape (occluded parts included), clipped to the frame;
* ``visibility`` is the fraction of the shape's pixels that are inside the frame and not covered
  by an object in front of it.

Objects either bounce off the borders or drive through the frame; one that has left the frame
is replaced by a new object (with a new id) entering from a border.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "CLASS_NAMES",
    "MIN_VISIBILITY",
    "GroundTruthObject",
    "RenderedFrame",
    "Scene",
]

#: The model's class names, in class-id order.
CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle")

#: An object counts as ground truth (is labelled for training, must be found by the detector and
#: the tracker) when at least this fraction of it is visible. Rows below it stay in ``.gt.txt``
#: files (with their visibility) so that scorers can ignore them instead of counting them.
MIN_VISIBILITY = 0.3

_SHIFT = 4  # fixed-point bits for sub-pixel drawing
_SCALE = 1 << _SHIFT
_MIN_SIZE, _MAX_SIZE = 30.0, 90.0  # shape extent in pixels (circle diameter, square side, ...)
_MIN_SPEED, _MAX_SPEED = 0.6, 6.0  # pixels per frame
_MAX_ACCEL = 0.25


@dataclass(frozen=True)
class GroundTruthObject:
    """One object in one frame: stable id (from 1), class id, box ``x, y, w, h`` in pixels, visibility."""

    id: int
    class_id: int
    x: float
    y: float
    w: float
    h: float
    visibility: float

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.x + self.w, self.y + self.h)

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.class_id]


@dataclass(frozen=True)
class RenderedFrame:
    """A BGR ``uint8`` image ``(height, width, 3)`` and the ground truth of every object touching it."""

    image: np.ndarray
    objects: tuple[GroundTruthObject, ...]


@dataclass
class _Shape:
    id: int
    class_id: int
    color: tuple[int, int, int]
    outline: tuple[int, int, int] | None
    size: float
    depth: float  # larger is nearer the camera (drawn later, covers others)
    pos: np.ndarray  # centre, float (2,)
    vel: np.ndarray
    acc: np.ndarray
    angle: float
    spin: float
    bounce: bool
    entered: bool  # has been at least partly inside the frame

    def outline_points(self) -> np.ndarray | None:
        """Polygon vertices (N, 2) in frame coordinates; None for a circle."""
        if self.class_id == 0:
            return None
        if self.class_id == 1:
            radius, corners, start = self.size * 0.85 / math.sqrt(2.0), 4, math.pi / 4
        else:
            radius, corners, start = self.size / math.sqrt(3.0), 3, -math.pi / 2
        angles = start + self.angle + np.arange(corners) * (2 * math.pi / corners)
        return self.pos + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)

    def extent(self) -> tuple[float, float, float, float]:
        """Float bounding box x1, y1, x2, y2 of the whole shape."""
        pts = self.outline_points()
        if pts is None:
            r = self.size / 2
            return (self.pos[0] - r, self.pos[1] - r, self.pos[0] + r, self.pos[1] + r)
        return (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())

    def draw(self, canvas: np.ndarray, color: tuple[int, ...], offset: tuple[int, int] = (0, 0), aa: bool = True) -> None:
        line = cv2.LINE_AA if aa else cv2.LINE_8
        pts = self.outline_points()
        ox, oy = offset
        if pts is None:
            center = (round((self.pos[0] - ox) * _SCALE), round((self.pos[1] - oy) * _SCALE))
            cv2.circle(canvas, center, round(self.size / 2 * _SCALE), color, -1, line, _SHIFT)
        else:
            fixed = np.round((pts - (ox, oy)) * _SCALE).astype(np.int32)
            cv2.fillPoly(canvas, [fixed], color, line, _SHIFT)


def _random_color(rng: np.random.Generator, avoid: list[np.ndarray]) -> tuple[int, int, int]:
    """A saturated BGR colour at least some distance from every colour in ``avoid``."""
    for _ in range(50):
        hsv = np.array([[[rng.integers(0, 180), rng.integers(150, 256), rng.integers(110, 256)]]], np.uint8)
        bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)
        if all(np.linalg.norm(bgr - a) > 90 for a in avoid):
            break
    return (int(bgr[0]), int(bgr[1]), int(bgr[2]))


def make_background(rng: np.random.Generator, width: int, height: int, distractors: int) -> np.ndarray:
    """A smooth two-colour gradient, blurred noise texture and static distractors (lines, soft blobs)."""
    c0 = rng.uniform(40, 200, 3)
    c1 = np.clip(c0 + rng.normal(0, 45, 3), 20, 235)
    theta = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * math.cos(theta) + ys * math.sin(theta)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    image = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    # Texture: coarse and fine noise, blurred so that it stays mild.
    for scale, amplitude in ((16, rng.uniform(4, 14)), (3, rng.uniform(2, 7))):
        small = rng.normal(0, 1, (height // scale + 2, width // scale + 2, 1)).astype(np.float32)
        noise = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        image += amplitude * noise[..., None] if noise.ndim == 2 else amplitude * noise
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(distractors):
        kind = rng.integers(0, 3)
        tone = tuple(int(v) for v in np.clip(c0 + rng.normal(0, 50, 3), 0, 255))
        if kind == 0:  # a straight line across part of the frame
            p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(image, p1, p2, tone, int(rng.integers(1, 4)), cv2.LINE_AA)
        elif kind == 1:  # a soft, blurred blob (not a crisp shape)
            blob = np.zeros((height, width), np.float32)
            center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(15, 70)), int(rng.integers(10, 50)))
            cv2.ellipse(blob, center, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
            blob = cv2.GaussianBlur(blob, (0, 0), sigmaX=float(rng.uniform(6, 14)))[..., None]
            alpha = 0.6 * blob
            image = (image * (1 - alpha) + np.array(tone, np.float32) * alpha).astype(np.uint8)
        else:  # a short polyline scribble
            start = rng.uniform((0, 0), (width, height))
            steps = rng.normal(0, 12, (int(rng.integers(3, 7)), 2)).cumsum(axis=0)
            pts = np.round(start + steps).astype(np.int32)
            cv2.polylines(image, [pts], False, tone, int(rng.integers(1, 3)), cv2.LINE_AA)
    return image


class Scene:
    """Moving shapes over a static background; ``render()`` the current frame, ``step()`` to advance.

    ``rng`` (or an int seed) drives everything. ``objects`` shapes are on screen at once;
    ``distractors`` static non-object marks go into the background (random 2-6 when None).
    """

    def __init__(
        self,
        rng: np.random.Generator | int,
        *,
        width: int = 640,
        height: int = 480,
        objects: int = 5,
        distractors: int | None = None,
    ) -> None:
        if width < 64 or height < 64:
            raise ValueError(f"frame must be at least 64x64, got {width}x{height}")
        if objects < 0:
            raise ValueError(f"objects must be >= 0, got {objects}")
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.width, self.height = width, height
        count = int(self.rng.integers(2, 7)) if distractors is None else distractors
        self.background = make_background(self.rng, width, height, count)
        corners = self.background[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float64)
        self._bg_colors = [c for c in corners]
        self._next_id = 1
        self.frame_index = 0
        self.shapes: list[_Shape] = [self._new_shape(entering=False) for _ in range(objects)]

    # -- objects -------------------------------------------------------------------------------
    def _new_shape(self, *, entering: bool) -> _Shape:
        rng = self.rng
        size = float(rng.uniform(_MIN_SIZE, _MAX_SIZE))
        speed = float(rng.uniform(_MIN_SPEED, _MAX_SPEED * 0.8))
        if entering:  # just outside a random border, heading inwards
            side = int(rng.integers(0, 4))
            margin = size * 0.75
            inward = (0.0, math.pi / 2, math.pi, -math.pi / 2)[side]  # left, top, right, bottom edge
            if side == 0:
                pos = (-margin, rng.uniform(0, self.height))
            elif side == 1:
                pos = (rng.uniform(0, self.width), -margin)
            elif side == 2:
                pos = (self.width + margin, rng.uniform(0, self.height))
            else:
                pos = (rng.uniform(0, self.width), self.height + margin)
            heading = inward + rng.uniform(-0.9, 0.9)
        else:
            pos = (rng.uniform(size * 0.3, self.width - size * 0.3), rng.uniform(size * 0.3, self.height - size * 0.3))
            heading = rng.uniform(0, 2 * math.pi)
        class_id = int(rng.integers(0, len(CLASS_NAMES)))
        color = _random_color(rng, self._bg_colors)
        outline = None
        if rng.random() < 0.35:
            outline = tuple(int(v * rng.uniform(0.3, 0.6)) for v in color)
        shape = _Shape(
            id=self._next_id,
            class_id=class_id,
            color=color,
            outline=outline,  # type: ignore[arg-type]
            size=size,
            depth=float(rng.random()),
            pos=np.array(pos, np.float64),
            vel=speed * np.array([math.cos(heading), math.sin(heading)]),
            acc=np.zeros(2),
            angle=float(rng.uniform(0, 2 * math.pi)),
            spin=float(rng.normal(0, 0.03)) if class_id else 0.0,
            bounce=bool(rng.random() < 0.6) and not entering,
            entered=not entering,
        )
        self._next_id += 1
        return shape

    def step(self) -> None:
        """Advance every object by one frame; replace objects that have left the frame."""
        rng = self.rng
        kept: list[_Shape] = []
        for s in self.shapes:
            s.acc = np.clip(0.85 * s.acc + rng.normal(0, 0.06, 2), -_MAX_ACCEL, _MAX_ACCEL)
            s.vel = s.vel + s.acc
            speed = float(np.hypot(*s.vel))
            if speed > _MAX_SPEED:
                s.vel *= _MAX_SPEED / speed
            elif speed < _MIN_SPEED:
                s.vel *= _MIN_SPEED / max(speed, 1e-6)
            s.pos = s.pos + s.vel
            s.angle += s.spin
            x1, y1, x2, y2 = s.extent()
            inside = x2 > 0 and y2 > 0 and x1 < self.width and y1 < self.height
            if s.bounce:
                if (x1 < 0 and s.vel[0] < 0) or (x2 > self.width and s.vel[0] > 0):
                    s.vel[0], s.acc[0] = -s.vel[0], -s.acc[0]
                if (y1 < 0 and s.vel[1] < 0) or (y2 > self.height and s.vel[1] > 0):
                    s.vel[1], s.acc[1] = -s.vel[1], -s.acc[1]
            elif inside:
                s.entered = True
            elif s.entered or not self._heading_in(s):
                kept.append(self._new_shape(entering=True))  # it left: a new object comes in
                continue
            kept.append(s)
        self.shapes = kept
        self.frame_index += 1

    def _heading_in(self, s: _Shape) -> bool:
        to_centre = np.array([self.width / 2, self.height / 2]) - s.pos
        return float(np.dot(to_centre, s.vel)) > 0

    # -- drawing -------------------------------------------------------------------------------
    def render(self) -> RenderedFrame:
        """Draw the current frame and compute every visible-or-in-frame object's ground truth."""
        width, height = self.width, self.height
        image = self.background.copy()
        order = sorted(self.shapes, key=lambda s: s.depth)  # back to front
        for s in order:
            s.draw(image, s.color)
            if s.outline is not None:
                self._draw_outline(image, s)
        covered = np.zeros((height, width), bool)
        truth: dict[int, GroundTruthObject] = {}
        for s in reversed(order):  # front to back: what is in front covers what is behind
            x1, y1, x2, y2 = s.extent()
            ox, oy = math.floor(x1) - 1, math.floor(y1) - 1
            local = np.zeros((math.ceil(y2) - oy + 2, math.ceil(x2) - ox + 2), np.uint8)
            s.draw(local, (1,), (ox, oy), aa=False)
            total = int(local.sum())
            rows = np.flatnonzero(local.any(axis=1))
            cols = np.flatnonzero(local.any(axis=0))
            if total == 0:
                continue
            bx1, bx2 = max(ox + cols[0], 0), min(ox + cols[-1] + 1, width)
            by1, by2 = max(oy + rows[0], 0), min(oy + rows[-1] + 1, height)
            if bx2 <= bx1 or by2 <= by1:
                continue  # wholly outside the frame
            # The part of the local mask that lies inside the frame.
            fx1, fy1 = max(ox, 0), max(oy, 0)
            fx2, fy2 = min(ox + local.shape[1], width), min(oy + local.shape[0], height)
            part = local[fy1 - oy : fy2 - oy, fx1 - ox : fx2 - ox].astype(bool)
            region = covered[fy1:fy2, fx1:fx2]
            visible = int(np.count_nonzero(part & ~region))
            region |= part
            truth[s.id] = GroundTruthObject(
                id=s.id,
                class_id=s.class_id,
                x=float(bx1),
                y=float(by1),
                w=float(bx2 - bx1),
                h=float(by2 - by1),
                visibility=round(visible / total, 4),
            )
        objects = tuple(truth[k] for k in sorted(truth))
        return RenderedFrame(image=image, objects=objects)

    @staticmethod
    def _draw_outline(image: np.ndarray, s: _Shape) -> None:
        thickness = 2
        pts = s.outline_points()
        if pts is None:
            center = (round(s.pos[0] * _SCALE), round(s.pos[1] * _SCALE))
            radius = round((s.size / 2 - thickness / 2) * _SCALE)
            cv2.circle(image, center, radius, s.outline, thickness, cv2.LINE_AA, _SHIFT)
        else:
            # Shrink the polygon towards its centre so the outline stays inside the filled shape.
            inner = s.pos + (pts - s.pos) * (1 - thickness / max(s.size, 1.0))
            fixed = np.round(inner * _SCALE).astype(np.int32)
            cv2.polylines(image, [fixed], True, s.outline, thickness, cv2.LINE_AA, _SHIFT)

    def frames(self, count: int) -> Iterator[RenderedFrame]:
        """Render ``count`` consecutive frames, stepping between them."""
        for i in range(count):
            if i:
                self.step()
            yield self.render()
