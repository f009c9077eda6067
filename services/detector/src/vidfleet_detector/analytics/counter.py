"""Turn tracks into counting events: line crossings and zone entries and exits, with counts.

Semantics (docs/counting.md):

* A track's position is its anchor (bottom centre of its box by default).
* Jitter: a dead band (hysteresis) of `hysteresis` x the box height on both sides of a line and of a
  zone's edge. Inside the band a track keeps the side it had; it changes side only once its anchor is
  past the band. A box that jitters on the line, or an object that stops on it, is never counted
  twice. Chosen over a minimum hit count: it adds no delay, it does not miss the crossing of a track
  that ends just after (at the frame's edge, occluded), and it does not depend on fps or skip_frames.
* A line is crossed when a track's side changes and the move between its last position before (past
  the band) and its first position after passes between A and B: a track that goes round the end of
  the line is not counted, and one that crosses between two processed frames (skip_frames) is.
* A track's first position only sets its side: a track first seen beyond a line has not crossed it
  (one first seen inside the band takes the side it is nearer to, so that a track found again just
  before the line still counts its crossing). A track first seen inside a zone enters it there.
* A track that ends while inside a zone exits it (reason `lost`); at the end of a video every track
  still inside exits (reason `end`). A track lost and found again under a new id is a new object: it
  enters again; its crossings are never counted twice (its first position only sets its side).

The state (counts and per-track sides) is plain JSON (`state()`/`from_state()`): a live detector
commits it with every batch, and a replacement resumes from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidfleet_common.counts import Counts, LineCounts, ZoneClassCounts, ZoneCounts
from vidfleet_detector.analytics.geometry import Line, ResolvedGeometry, Zone, anchor_points

STATE_VERSION = 1
Event = dict[str, Any]


@dataclass
class _Track:
    votes: dict[str, int] = field(default_factory=dict)
    sides: dict[str, list[float]] = field(default_factory=dict)  # line -> [side (+1 right, -1 left), x, y]
    zones: dict[str, dict[str, Any]] = field(default_factory=dict)  # zone -> {"in": bool, "since": t, "class": name or None}
    last_frame: int = 0
    last_time: float = 0.0

    @property
    def class_name(self) -> str:
        return max(self.votes.items(), key=lambda kv: kv[1])[0] if self.votes else ""

    def as_json(self) -> dict[str, Any]:
        return {"votes": self.votes, "sides": self.sides, "zones": self.zones, "last_frame": self.last_frame, "last_time": self.last_time}


class Counter:
    """Counting for one video or one stream. `update` once per processed frame, `finish` at the end of a video."""

    def __init__(self, geometry: ResolvedGeometry, names: dict[int, str]) -> None:
        self.geometry = geometry
        self.names = names
        self.tracks: dict[int, _Track] = {}
        self.counts = Counts(
            lines={line.name: LineCounts(crossings={d: 0 for d in line.spec.directions}) for line in geometry.lines},
            zones={zone.name: ZoneCounts() for zone in geometry.zones},
        )
        self._classes = {d.name: frozenset(d.spec.classes) if d.spec.classes else None for d in (*geometry.lines, *geometry.zones)}
        self._anchors = sorted({d.spec.anchor for d in (*geometry.lines, *geometry.zones)})

    # ---- per frame --------------------------------------------------------------------------------------
    def update(self, frame: int, time: float, rows: np.ndarray, alive: Iterable[int] | None = None) -> list[Event]:
        """Events of one processed frame. `rows` is Sort.update's (M, 7) result; `alive` the tracker's
        live track ids (reported or not): a known track no longer among them has ended."""
        events: list[Event] = []
        if len(rows):
            ids = rows[:, 4].astype(int).tolist()
            heights = (rows[:, 3] - rows[:, 1]).tolist()
            anchor_arrays = {name: anchor_points(rows, name) for name in self._anchors}
            anchors = {name: points.tolist() for name, points in anchor_arrays.items()}
            states = []
            for tid, class_id in zip(ids, rows[:, 6].astype(int).tolist()):
                st = self.tracks.get(tid)
                if st is None:
                    st = self.tracks[tid] = _Track()
                cls = self.names.get(class_id, str(class_id)) if class_id >= 0 else ""
                st.votes[cls] = st.votes.get(cls, 0) + 1
                st.last_frame, st.last_time = frame, time
                states.append(st)
            # Every line's distances (and every zone's depths) for every anchor in use, in one numpy pass each.
            distances = {name: self.geometry.line_distances(p).tolist() for name, p in anchor_arrays.items()} if self.geometry.lines else {}
            depths = {name: self.geometry.zone_depths(p).tolist() for name, p in anchor_arrays.items()} if self.geometry.zones else {}
            for j, line in enumerate(self.geometry.lines):
                points, row, hysteresis = anchors[line.spec.anchor], distances[line.spec.anchor][j], line.spec.hysteresis
                for i, (tid, st) in enumerate(zip(ids, states)):
                    event = self._line_step(line, tid, st, row[i], hysteresis * heights[i], points[i], frame, time)
                    if event:
                        events.append(event)
            for j, zone in enumerate(self.geometry.zones):
                points, row, hysteresis = anchors[zone.spec.anchor], depths[zone.spec.anchor][j], zone.spec.hysteresis
                for i, (tid, st) in enumerate(zip(ids, states)):
                    event = self._zone_step(zone, tid, st, row[i], hysteresis * heights[i], points[i], frame, time)
                    if event:
                        events.append(event)
        if alive is not None:
            alive_ids = set(alive)
            for tid in [t for t in self.tracks if t not in alive_ids]:
                events += self._exit_all(tid, self.tracks.pop(tid), frame, time, "lost")
        return events

    def finish(self, frame: int, time: float) -> list[Event]:
        """The video ended: every track inside a zone exits (reason `end`)."""
        events: list[Event] = []
        for tid, st in sorted(self.tracks.items()):
            events += self._exit_all(tid, st, frame, time, "end")
        self.tracks.clear()
        return events

    def _line_step(
        self, line: Line, tid: int, st: _Track, distance: float, band: float, point: list[float], frame: int, time: float
    ) -> Event | None:
        side = 1.0 if distance > 0 else -1.0
        name = line.spec.name
        previous = st.sides.get(name)
        if -band <= distance <= band:
            if previous is None:  # born in the band: on the side it is nearer to, until it leaves the band
                st.sides[name] = [side, point[0], point[1]]
            return None  # in the dead band: the track keeps its side
        if previous is not None and previous[0] == side:
            previous[1], previous[2] = point[0], point[1]
            return None
        st.sides[name] = [side, point[0], point[1]]
        if previous is None:
            return None
        if not line.crossed_by(previous[1:], point):
            return None  # changed side beyond an end of the segment
        cls = st.class_name
        if not self._counts_class(line.name, cls):
            return None
        direction = line.spec.directions[0 if side > 0 else 1]
        counts = self.counts.lines[line.name]
        counts.crossings[direction] += 1
        by_class = counts.by_class.setdefault(cls, {d: 0 for d in line.spec.directions})
        by_class[direction] += 1
        return {"frame": frame, "time": round(time, 3), "track_id": tid, "class_name": cls, "line": line.name,
                "kind": "cross", "direction": direction, "point": _point(point)}

    def _zone_step(
        self, zone: Zone, tid: int, st: _Track, depth: float, band: float, point: list[float], frame: int, time: float
    ) -> Event | None:
        if -band <= depth <= band:
            return None
        inside = depth > 0
        state = st.zones.get(zone.name)
        if state is not None and state["in"] == inside:
            return None
        if not inside:
            st.zones[zone.name] = {"in": False}
            return self._exit(zone.name, tid, state, st.last_time, frame, time, "left", point) if state else None
        cls = st.class_name
        counted = self._counts_class(zone.name, cls)
        st.zones[zone.name] = {"in": True, "since": time, "class": cls if counted else None}
        if not counted:
            return None
        counts = self.counts.zones[zone.name]
        by_class = counts.by_class.setdefault(cls, ZoneClassCounts())
        counts.entries += 1
        counts.inside += 1
        counts.max_inside = max(counts.max_inside, counts.inside)
        by_class.entries += 1
        by_class.inside += 1
        return {"frame": frame, "time": round(time, 3), "track_id": tid, "class_name": cls, "zone": zone.name,
                "kind": "enter", "point": _point(point)}

    def _exit(
        self, zone: str, tid: int, state: dict[str, Any], last_time: float, frame: int, time: float, reason: str,
        point: list[float] | None = None,
    ) -> Event | None:
        cls = state.get("class")
        if not state.get("in") or cls is None:
            return None  # never entered, or entered as a class this zone does not count
        dwell = max(0.0, (time if reason == "left" else last_time) - state["since"])
        counts = self.counts.zones[zone]
        by_class = counts.by_class.setdefault(cls, ZoneClassCounts())
        counts.exits += 1
        counts.inside -= 1
        counts.dwell_seconds = round(counts.dwell_seconds + dwell, 3)
        by_class.exits += 1
        by_class.inside -= 1
        event = {"frame": frame, "time": round(time, 3), "track_id": tid, "class_name": cls, "zone": zone,
                 "kind": "exit", "dwell": round(dwell, 3), "reason": reason}
        if point is not None:
            event["point"] = _point(point)
        return event

    def _exit_all(self, tid: int, st: _Track, frame: int, time: float, reason: str) -> list[Event]:
        events = []
        for zone in self.geometry.zones:
            state = st.zones.get(zone.name)
            if state:
                event = self._exit(zone.name, tid, state, st.last_time, frame, time, reason)
                if event:
                    events.append(event)
        return events

    def _counts_class(self, name: str, cls: str) -> bool:
        allowed = self._classes[name]
        return allowed is None or cls in allowed

    # ---- state ------------------------------------------------------------------------------------------
    def inside(self) -> dict[str, dict[str, int]]:
        """Zone -> class -> tracks inside now."""
        return {name: {cls: c.inside for cls, c in zone.by_class.items()} for name, zone in self.counts.zones.items()}

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "counts": self.counts.model_dump(mode="json"),
            "tracks": {str(tid): st.as_json() for tid, st in self.tracks.items()},
        }

    @classmethod
    def from_state(cls, geometry: ResolvedGeometry, names: dict[int, str], state: dict[str, Any] | None) -> Counter:
        """A counter resuming `state`; counts of lines and zones no longer defined are dropped, new ones start at 0."""
        counter = cls(geometry, names)
        if not state or state.get("version") != STATE_VERSION:
            return counter
        saved = Counts.model_validate(state["counts"])
        for name, line in saved.lines.items():
            if name in counter.counts.lines and set(line.crossings) == set(counter.counts.lines[name].crossings):
                counter.counts.lines[name] = line
        for name, zone in saved.zones.items():
            if name in counter.counts.zones:
                counter.counts.zones[name] = zone
        lines = {line.name for line in geometry.lines}
        zones = {zone.name for zone in geometry.zones}
        for tid, raw in state["tracks"].items():
            counter.tracks[int(tid)] = _Track(
                votes=dict(raw["votes"]),
                sides={k: v for k, v in raw["sides"].items() if k in lines},
                zones={k: v for k, v in raw["zones"].items() if k in zones},
                last_frame=int(raw["last_frame"]),
                last_time=float(raw["last_time"]),
            )
        return counter


def _point(point: list[float]) -> list[float]:
    return [round(point[0], 1), round(point[1], 1)]
