"""Ground truth for counting: the true crossings and zone entries of a generated video's trajectories, and
the matching of counted events to them (tests/integration/test_counting_accuracy.py).

The truth reads the scene's own trajectories (the `.gt.txt` beside the video), with its own geometry code,
under the documented semantics (docs/counting.md): an object crosses a line when its true anchor goes from
clearly one side to clearly the other, through the segment; "clearly" is beyond the dead band
(`hysteresis` x the true box height) by MARGIN_PIXELS more, the detector's localisation error. A true
move that only grazes the line (into the band and back), or passes within END_PIXELS of an end of the
line, is *allowed* (a count of it is not wrong) but not *required*.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from vidfleet_common.counting import ANCHOR_POSITION, LineSpec, ZoneSpec, segments_intersect
from vidfleet_detector.synthetic import MIN_VISIBILITY, GroundTruthObject, load_ground_truth

MARGIN_PIXELS = 3.0
END_PIXELS = 6.0
# A counted event is matched to a true crossing of the same object and line this many frames away at most.
MATCH_FRAMES = 30

Point = tuple[float, float]


@dataclass(frozen=True)
class TrueEvent:
    object_id: int
    name: str  # the line or zone
    frame: int  # the first frame clearly past the line (inside the zone); for a graze, the frame of the sign change
    direction: str | None  # crossings only
    required: bool  # clear, through the segment away from its ends, and visible (MIN_VISIBILITY) on that frame


def _anchor(o: GroundTruthObject, anchor: str) -> Point:
    fx, fy = ANCHOR_POSITION[anchor]
    return (o.x + fx * o.w, o.y + fy * o.h)


def trajectories(video: Path) -> dict[int, list[tuple[int, GroundTruthObject]]]:
    """Object id -> (frame, its ground truth) for every frame it touches, in frame order."""
    by_object: dict[int, list[tuple[int, GroundTruthObject]]] = defaultdict(list)
    for frame, objects in sorted(load_ground_truth(video).items()):
        for o in objects:
            by_object[o.id].append((frame, o))
    return by_object


def _signed_distance(a: Point, b: Point, p: Point) -> float:
    return ((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])) / math.dist(a, b)


def _meets_away_from_ends(a: Point, b: Point, p: Point, q: Point) -> tuple[bool, bool]:
    """(whether p -> q meets the segment a-b or passes within END_PIXELS beyond an end, whether it meets it within
    END_PIXELS of an end, on either side of that end)."""
    s0, s1 = _signed_distance(a, b, p), _signed_distance(a, b, q)
    if s0 == s1:
        return False, False
    t = s0 / (s0 - s1)
    at = (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))
    near_end = min(math.dist(at, a), math.dist(at, b)) <= END_PIXELS
    return segments_intersect(p, q, a, b) or near_end, near_end


def true_crossings(video: Path, lines: list[LineSpec]) -> list[TrueEvent]:
    found = []
    for object_id, path in trajectories(video).items():
        for line in lines:
            a, b = (line.points[0][0], line.points[0][1]), (line.points[1][0], line.points[1][1])
            clear: tuple[float, Point] | None = None  # (side, point) where the object was last clearly on one side
            previous: tuple[int, Point, float] | None = None
            for frame, o in path:
                p = _anchor(o, line.anchor)
                s = _signed_distance(a, b, p)
                if previous is not None and previous[0] == frame - 1 and (previous[2] < 0 <= s or s < 0 <= previous[2]):
                    meets, _ = _meets_away_from_ends(a, b, previous[1], p)
                    if meets:  # a sign change through the segment: allowed at least
                        found.append(TrueEvent(object_id, line.name, frame, line.directions[0 if s >= 0 else 1], False))
                previous = (frame, p, s)
                if abs(s) <= line.hysteresis * o.h + MARGIN_PIXELS:
                    continue
                side = 1.0 if s > 0 else -1.0
                if clear is not None and clear[0] != side:
                    meets, near_end = _meets_away_from_ends(a, b, clear[1], p)
                    if meets:
                        found.append(TrueEvent(object_id, line.name, frame, line.directions[0 if side > 0 else 1],
                                               not near_end and o.visibility >= MIN_VISIBILITY))
                clear = (side, p)
    return found


def _depth(polygon: list[list[float]], p: Point) -> float:
    inside = False
    nearest = math.inf
    for (ax, ay), (bx, by) in zip(polygon, polygon[1:] + polygon[:1]):
        if (ay > p[1]) != (by > p[1]) and p[0] < ax + (p[1] - ay) * (bx - ax) / (by - ay):
            inside = not inside
        ex, ey = bx - ax, by - ay
        t = max(0.0, min(1.0, ((p[0] - ax) * ex + (p[1] - ay) * ey) / (ex * ex + ey * ey)))
        nearest = min(nearest, math.dist(p, (ax + t * ex, ay + t * ey)))
    return nearest if inside else -nearest


def true_entries(video: Path, zones: list[ZoneSpec]) -> list[TrueEvent]:
    """Clear entries (from clearly outside, or first seen clearly inside) are required; any other entry is allowed."""
    found = []
    for object_id, path in trajectories(video).items():
        for zone in zones:
            clear: bool | None = None
            was_inside = False
            for frame, o in path:
                d = _depth(zone.polygon, _anchor(o, zone.anchor))
                if d > 0 and not was_inside:
                    found.append(TrueEvent(object_id, zone.name, frame, None, False))
                was_inside = d > 0
                if abs(d) <= zone.hysteresis * o.h + MARGIN_PIXELS:
                    continue
                if d > 0 and clear is not True:
                    found.append(TrueEvent(object_id, zone.name, frame, None, o.visibility >= MIN_VISIBILITY))
                clear = d > 0
    return found


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def track_boxes(tracks_file: Path) -> dict[tuple[int, int], tuple[float, float, float, float]]:
    """(frame, track id) -> box x1, y1, x2, y2 from a MOT tracks file."""
    boxes = {}
    for row in tracks_file.read_text().splitlines():
        frame, tid, x, y, w, h = (float(v) for v in row.split(",")[:6])
        boxes[(int(frame), int(tid))] = (x, y, x + w, y + h)
    return boxes


@dataclass
class Scored:
    """Counted events against the truth."""

    what: str
    truth: list[TrueEvent]
    matched: dict[TrueEvent, dict] = field(default_factory=dict)  # required truth -> the event that counted it
    twice: list[tuple[TrueEvent, dict]] = field(default_factory=list)  # a required one already counted, counted again
    wrong_direction: list[tuple[TrueEvent, dict]] = field(default_factory=list)
    allowed: list[dict] = field(default_factory=list)  # events of a graze or a move near a line's end
    unmatched: list[dict] = field(default_factory=list)  # events of nothing that happened

    @property
    def required(self) -> list[TrueEvent]:
        return [t for t in self.truth if t.required]

    @property
    def missed(self) -> list[TrueEvent]:
        return [t for t in self.required if t not in self.matched]

    @property
    def recall(self) -> float:
        return 1 - len(self.missed) / len(self.required)

    def summary(self) -> str:
        return (f"{self.what}: {len(self.required)} true, {len(self.required) - len(self.missed)} counted ({self.recall:.1%}); "
                f"counted twice {len(self.twice)}, wrong direction {len(self.wrong_direction)}, "
                f"of a graze {len(self.allowed)}, of nothing true {len(self.unmatched)}")


def score(video: Path, truth: list[TrueEvent], events: list[dict], tracks_file: Path, *, kind: str, key: str) -> Scored:
    """Match every `kind` event to a true one of the object its track follows at that frame (best IoU)."""
    gt = load_ground_truth(video)
    boxes = track_boxes(tracks_file)
    scored = Scored(f"{kind} events", truth)
    by_object: dict[tuple[int, str], list[TrueEvent]] = defaultdict(list)
    for t in truth:
        by_object[(t.object_id, t.name)].append(t)
    for event in (e for e in events if e["kind"] == kind):
        box = boxes[(event["frame"], event["track_id"])]
        best, overlap = max(((o, _iou(box, o.xyxy)) for o in gt.get(event["frame"], [])), key=lambda c: c[1], default=(None, 0.0))
        near = [t for t in by_object[(best.id, event[key])] if abs(t.frame - event["frame"]) <= MATCH_FRAMES] if best and overlap >= 0.3 else []
        required = [t for t in near if t.required]
        free = [t for t in required if t not in scored.matched]
        if free:
            chosen = min(free, key=lambda t: abs(t.frame - event["frame"]))
            scored.matched[chosen] = event
            if chosen.direction != event.get("direction"):
                scored.wrong_direction.append((chosen, event))
        elif near and not required:
            scored.allowed.append(event)
        elif required:
            scored.twice.append((min(required, key=lambda t: abs(t.frame - event["frame"])), event))
        else:
            scored.unmatched.append(event)
    return scored
