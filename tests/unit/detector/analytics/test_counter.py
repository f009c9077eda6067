"""The counter on hand-made tracks: every rule of docs/counting.md, one small case each."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidfleet_common.job_config import JobConfig
from vidfleet_detector.analytics.counter import Counter
from vidfleet_detector.analytics.geometry import resolve

NAMES = {0: "car", 1: "person"}
HEIGHT = 50.0  # every box: 40 x 50, so the dead band is 5 px (hysteresis 0.1)


def counter(**config: object) -> Counter:
    parsed = JobConfig.from_mapping(config)
    return Counter(resolve(parsed.lines, parsed.zones, 640, 480), NAMES)


def box(x: float, y: float, track_id: int, class_id: int = 0) -> list[float]:
    """A row of Sort.update's result whose bottom centre (the default anchor) is (x, y)."""
    return [x - 20, y - HEIGHT, x + 20, y, track_id, 0.9, class_id]


def run(c: Counter, path: list[tuple[float, float]], *, track_id: int = 1, class_id: int = 0, start: int = 1, step: int = 1) -> list[dict]:
    """One track along `path`, one processed frame every `step` frames; then it ends."""
    events = []
    frame = start
    for x, y in path:
        events += c.update(frame, frame / 10, np.array([box(x, y, track_id, class_id)]), {track_id})
        frame += step
    events += c.update(frame, frame / 10, np.empty((0, 7)), set())
    return events


GATE = {"lines": [{"name": "gate", "points": [[320, 0], [320, 480]]}]}  # drawn top to bottom: "in" is moving left


def crossings(events: list[dict]) -> list[str]:
    return [e["direction"] for e in events if e["kind"] == "cross"]


def test_a_track_crossing_once_is_counted_once_with_its_direction() -> None:
    c = counter(**GATE)
    assert crossings(run(c, [(x, 300) for x in range(250, 400, 10)])) == ["out"]
    assert crossings(run(c, [(x, 300) for x in range(400, 250, -10)], track_id=2)) == ["in"]
    assert c.counts.lines["gate"].crossings == {"in": 1, "out": 1}
    assert c.counts.lines["gate"].by_class == {"car": {"in": 1, "out": 1}}


def test_a_track_that_grazes_the_line_is_not_counted() -> None:
    # Comes to 3 px from the line (inside the 5 px band) and goes back.
    path = [(x, 300) for x in (280, 300, 310, 317, 315, 305, 290)]
    assert run(counter(**GATE), path) == []


def test_a_track_that_stops_on_the_line_and_jitters_there_is_counted_once() -> None:
    c = counter(**GATE)
    rng = np.random.default_rng(3)
    on_line = [(320 + float(rng.uniform(-4, 4)), 300 + float(rng.uniform(-2, 2))) for _ in range(60)]
    events = run(c, [(280, 300), (300, 300), *on_line, (340, 300), (360, 300)])
    assert crossings(events) == ["out"]
    # Without the band, every jitter across x = 320 would have counted.
    assert sum(1 for (a, _), (b, _) in zip(on_line, on_line[1:]) if (a - 320) * (b - 320) < 0) > 10


def test_a_track_that_crosses_back_and_forth_is_counted_each_time() -> None:
    events = run(counter(**GATE), [(300, 300), (340, 300), (300, 300), (340, 300), (300, 300)])
    assert crossings(events) == ["out", "in", "out", "in"]


def test_a_crossing_between_two_processed_frames_is_counted_at_the_frame_it_is_seen() -> None:
    # skip_frames=5: the tracker sees frames 1, 6, 11; the anchor jumps across the line between 6 and 11.
    events = run(counter(**GATE), [(200, 300), (290, 300), (380, 300), (470, 300)], step=5)
    assert crossings(events) == ["out"] and events[0]["frame"] == 11 and events[0]["point"] == [380.0, 300.0]


def test_going_round_the_end_of_the_line_is_not_a_crossing() -> None:
    short = {"lines": [{"name": "door", "points": [[320, 200], [320, 300]]}]}
    assert run(counter(**short), [(x, 400) for x in range(250, 400, 10)]) == []  # below the segment
    assert crossings(run(counter(**short), [(x, 250) for x in range(250, 400, 10)])) == ["out"]


def test_a_track_first_seen_beyond_the_line_has_not_crossed_it() -> None:
    assert run(counter(**GATE), [(400, 300), (410, 300)]) == []


def test_the_anchor_decides_and_can_be_changed() -> None:
    # A horizontal line at y = 200, drawn left to right: moving down goes from its left to its right ("in").
    horizontal = {"name": "h", "points": [[0, 200], [640, 200]]}
    path = [(300, y) for y in (150, 170, 190, 205, 215, 225, 235)]  # bottom centre from 150 to 235
    assert crossings(run(counter(lines=[horizontal]), path)) == ["in"]
    assert run(counter(lines=[{**horizontal, "anchor": "top_center"}]), path) == []  # the top stayed above (100..185)
    assert crossings(run(counter(lines=[{**horizontal, "anchor": "center"}]), path)) == ["in"]  # the centre: 125..210


def test_directions_can_be_named() -> None:
    named = {"lines": [{"name": "gate", "points": [[320, 0], [320, 480]], "directions": ["westbound", "eastbound"]}]}
    assert crossings(run(counter(**named), [(x, 300) for x in range(250, 400, 10)])) == ["eastbound"]


def test_classes_limit_what_is_counted_and_a_track_has_its_most_frequent_class() -> None:
    c = counter(lines=[{"name": "gate", "points": [[320, 0], [320, 480]], "classes": ["person"]}])
    assert run(c, [(x, 300) for x in range(250, 400, 10)], class_id=0) == []
    events = []
    for frame, (x, cls) in enumerate([(280, 1), (290, 0), (300, 1), (340, 1), (350, 1)], start=1):
        events += c.update(frame, frame / 10, np.array([box(x, 300, 7, cls)]), {7})
    assert [(e["class_name"], e["direction"]) for e in events] == [("person", "out")]


ZONE = {"zones": [{"name": "dock", "polygon": [[100, 100], [300, 100], [300, 300], [100, 300]], "capacity": 1}]}


def kinds(events: list[dict]) -> list[tuple[str, str | None]]:
    return [(e["kind"], e.get("reason")) for e in events]


def test_a_zone_entry_and_exit_with_its_dwell() -> None:
    c = counter(**ZONE)
    events = run(c, [(x, 200) for x in range(50, 400, 10)])
    assert kinds(events) == [("enter", None), ("exit", "left")]
    enter, leave = events
    assert enter["frame"] == 7 and enter["point"] == [110.0, 200.0]  # 10 px inside: past the 5 px band
    assert leave["frame"] == 27 and leave["dwell"] == pytest.approx(2.0)
    zone = c.counts.zones["dock"]
    assert (zone.entries, zone.exits, zone.inside, zone.max_inside, zone.dwell_seconds) == (1, 1, 0, 1, 2.0)


def test_jitter_on_the_zone_edge_enters_once() -> None:
    c = counter(**ZONE)
    edge = [(100 + (4 if i % 2 else -4), 200) for i in range(30)]
    events = run(c, [(60, 200), *edge, (150, 200), (200, 200)])
    assert kinds(events) == [("enter", None), ("exit", "lost")]


def test_a_track_first_seen_inside_enters_there_and_one_that_ends_inside_exits_lost() -> None:
    c = counter(**ZONE)
    first = c.update(1, 0.0, np.array([box(200, 200, 1)]), {1})
    assert kinds(first) == [("enter", None)] and c.counts.zones["dock"].inside == 1
    assert c.update(2, 0.1, np.empty((0, 7)), {1}) == []  # not reported this frame but alive in the tracker: still inside
    lost = c.update(3, 0.2, np.empty((0, 7)), set())
    assert kinds(lost) == [("exit", "lost")] and lost[0]["dwell"] == pytest.approx(0.0) and c.counts.zones["dock"].inside == 0


def test_a_track_refound_under_a_new_id_is_a_new_object() -> None:
    c = counter(**ZONE, **GATE)
    events = c.update(1, 0.0, np.array([box(200, 200, 1)]), {1})
    events += c.update(2, 0.1, np.empty((0, 7)), set())  # occluded: the tracker dropped it
    events += c.update(3, 0.2, np.array([box(205, 200, 2)]), {2})  # found again as track 2
    assert [(e["kind"], e["track_id"]) for e in events] == [("enter", 1), ("exit", 1), ("enter", 2)]
    assert c.counts.zones["dock"].entries == 2
    # A new id's first position sets its side: a track re-found beyond a line does not count the crossing again.
    assert crossings(run(c, [(400, 300)], track_id=3)) == []


def test_the_end_of_a_video_closes_every_zone_visit() -> None:
    c = counter(**ZONE)
    c.update(1, 0.0, np.array([box(150, 200, 1), box(250, 200, 2)]), {1, 2})
    assert c.counts.zones["dock"].max_inside == 2
    ended = c.finish(10, 0.9)
    assert kinds(ended) == [("exit", "end")] * 2 and all(e["dwell"] == 0.0 for e in ended)
    assert c.counts.zones["dock"].inside == 0 and c.tracks == {}


def test_a_concave_zone_counts_its_notch_as_outside() -> None:
    u_shape = {"zones": [{"name": "u", "polygon": [[100, 100], [200, 100], [200, 300], [400, 300], [400, 100], [500, 100], [500, 400], [100, 400]]}]}
    assert run(counter(**u_shape), [(300, y) for y in range(120, 290, 10)]) == []  # down the notch, never past its floor
    assert kinds(run(counter(**u_shape), [(300, y) for y in range(120, 360, 10)]))[:1] == [("enter", None)]


def test_fractions_of_the_frame_are_scaled_to_it() -> None:
    c = counter(lines=[{"name": "mid", "points": [[0.5, 0], [0.5, 1]]}])
    assert c.geometry.lines[0].a.tolist() == [320.0, 0.0] and c.geometry.lines[0].b.tolist() == [320.0, 480.0]
    assert crossings(run(c, [(x, 300) for x in range(250, 400, 10)])) == ["out"]


def test_the_state_is_json_and_a_resumed_counter_continues_exactly() -> None:
    config = {**GATE, **ZONE}
    rng = np.random.default_rng(11)
    frames = []
    for frame in range(1, 121):
        rows = [box(150 + 3 * frame + float(rng.normal(0, 1)), 200 + float(rng.normal(0, 1)), 1), box(500 - 2 * frame, 250, 2, 1)]
        frames.append((frame, np.array(rows)))
    whole = counter(**config)
    expected = [e for frame, rows in frames for e in whole.update(frame, frame / 10, rows, {1, 2})]
    first = counter(**config)
    got = [e for frame, rows in frames[:60] for e in first.update(frame, frame / 10, rows, {1, 2})]
    state = json.loads(json.dumps(first.state()))
    resumed = Counter.from_state(first.geometry, NAMES, state)
    got += [e for frame, rows in frames[60:] for e in resumed.update(frame, frame / 10, rows, {1, 2})]
    assert got == expected and len(expected) >= 3
    assert resumed.counts == whole.counts


def test_a_resumed_state_keeps_the_counts_of_lines_still_defined_only() -> None:
    c = counter(**GATE)
    run(c, [(x, 300) for x in range(250, 400, 10)])
    other = JobConfig.from_mapping({"lines": [{"name": "gate", "points": [[320, 0], [320, 480]]}, {"name": "new", "points": [[0, 10], [640, 10]]}]})
    resumed = Counter.from_state(resolve(other.lines, other.zones, 640, 480), NAMES, c.state())
    assert resumed.counts.lines["gate"].crossings == {"in": 0, "out": 1}
    assert resumed.counts.lines["new"].crossings == {"in": 0, "out": 0}
