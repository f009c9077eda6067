"""Counts and events of counting lines and zones: their shape in result.json, in Redis and on the wire.

An event is one JSON object (a line of `<video>.events.jsonl`, an entry of `…:events:<stream>`, an
item of a webhook POST):

  frame       batch: the frame number (from 1, as in the tracks file); live: the frame's seq
  time        batch: seconds from the start of the video; live: the capture time, seconds since the epoch
  track_id    the SORT track id
  class_name  the track's class (the most frequent among its detections so far; on exit, the one it entered with)
  line | zone the definition's name
  kind        cross, enter or exit
  direction   on cross: one of the line's two direction names
  dwell       on exit: seconds since the enter
  reason      on exit: left (the anchor went out), lost (the track ended inside), end (the video ended)
  point       the anchor [x, y] in pixels when the event was decided
  stream, seq, ts   live only: the stream and the frame's seq and capture timestamp (ns)
  n           live only: the stream's event number, from 1 and without gaps (a gap: events trimmed unread)

Event stream `…:events:<stream>`: one entry per event, field `event` = the JSON object, trimmed to
about `StreamSpec.max_events` entries (MAXLEN ~).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EVENT_KINDS = ("cross", "enter", "exit")
EXIT_REASONS = ("left", "lost", "end")


class LineCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    crossings: dict[str, int] = Field(description="Direction name -> crossings (both of the line's directions, 0 included).")
    by_class: dict[str, dict[str, int]] = Field(default_factory=dict, description="Class name -> direction name -> crossings.")


class ZoneClassCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: int = 0
    exits: int = 0
    inside: int = 0


class ZoneCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: int = Field(0, description="Tracks that entered.")
    exits: int = Field(0, description="Tracks that left (or ended) after entering.")
    inside: int = Field(0, description="Tracks inside now (live); 0 at the end of a video, whose last tracks exit with reason `end`.")
    max_inside: int = Field(0, description="The most tracks inside at once (over videos: the largest of any one video).")
    dwell_seconds: float = Field(0.0, description="Seconds spent inside, summed over exits (mean dwell = dwell_seconds / exits).")
    by_class: dict[str, ZoneClassCounts] = Field(default_factory=dict)


class Counts(BaseModel):
    """What the counting lines and zones of one video (or a job, or a live stream) counted."""

    model_config = ConfigDict(extra="forbid")

    lines: dict[str, LineCounts] = Field(default_factory=dict)
    zones: dict[str, ZoneCounts] = Field(default_factory=dict)

    def add(self, other: Counts) -> Counts:
        """The sum of two counts (a new object): crossings, entries, exits and dwell add; max_inside is the larger."""
        merged = self.model_copy(deep=True)
        for name, line in other.lines.items():
            mine = merged.lines.setdefault(name, LineCounts(crossings={}))
            _add_into(mine.crossings, line.crossings)
            for cls, by_direction in line.by_class.items():
                _add_into(mine.by_class.setdefault(cls, {}), by_direction)
        for name, zone in other.zones.items():
            mine_zone = merged.zones.setdefault(name, ZoneCounts())
            mine_zone.entries += zone.entries
            mine_zone.exits += zone.exits
            mine_zone.inside += zone.inside
            mine_zone.max_inside = max(mine_zone.max_inside, zone.max_inside)
            mine_zone.dwell_seconds = round(mine_zone.dwell_seconds + zone.dwell_seconds, 3)
            for cls, counts in zone.by_class.items():
                target = mine_zone.by_class.setdefault(cls, ZoneClassCounts())
                target.entries += counts.entries
                target.exits += counts.exits
                target.inside += counts.inside
        return merged


def _add_into(target: dict[str, int], source: dict[str, int]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def sum_counts(items: Iterable[Counts | None]) -> Counts | None:
    """The job's counts: the sum over its videos (None when no video counted anything, i.e. no lines or zones)."""
    total: Counts | None = None
    for counts in items:
        if counts is not None:
            total = counts if total is None else total.add(counts)
    return total


def event_fields(event: dict[str, Any]) -> dict[str, str]:
    """The fields of an event's entry in `…:events:<stream>`."""
    return {"event": json.dumps(event, separators=(",", ":"))}


def event_from_fields(fields: dict[Any, Any]) -> dict[str, Any]:
    raw = fields.get(b"event", fields.get("event"))
    if raw is None:
        raise ValueError("event entry without an 'event' field")
    return json.loads(raw)
