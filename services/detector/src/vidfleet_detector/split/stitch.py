"""Stitch the chunks of one video into the files one run over the whole video writes.

Identity: the tracks of chunk k and chunk k-1 are compared in the frames both processed (chunk k's
lead-in, [read_from, start)). A pair's score is the mean IoU of their boxes over the frames where both
have one; pairs seen together in fewer than MIN_COMMON_FRAMES frames or scoring under MATCH_IOU never
match. The assignment is one-to-one, of highest total score (Hungarian, the tracker's own
`linear_assignment`). A matched track of chunk k takes the id of its partner; an unmatched one a new id,
numbered after every id used so far, in the order the tracks first appear. Ids of the first chunk stay.

Frames: each frame comes from the chunk that owns it (vidfleet_common.chunks), so a frame is never
written twice nor left out. Events are taken the same way and replayed into the counts: an `enter` for
a track already inside (its chunk saw it enter again in the lead-in) and an `exit` of a track not inside
are dropped, so the counts are the events' sums.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from vidfleet_common.chunks import BoundaryStats, Chunk
from vidfleet_common.counts import Counts, LineCounts, ZoneClassCounts, ZoneCounts
from vidfleet_common.job_config import JobConfig
from vidfleet_detector.tracking.association import iou_batch, linear_assignment

MATCH_IOU = 0.5
MIN_COMMON_FRAMES = 2


@dataclass
class ChunkTracks:
    """A chunk's tracks file: frame number -> rows [x1, y1, x2, y2, id, score, class]."""

    by_frame: dict[int, np.ndarray]

    @classmethod
    def read(cls, path: Path) -> ChunkTracks:
        rows: dict[int, list[list[float]]] = defaultdict(list)
        with open(path, encoding="utf-8") as file:
            for line in file:
                f = line.rstrip("\n").split(",")
                x, y, w, h = float(f[2]), float(f[3]), float(f[4]), float(f[5])
                cls_id = float(f[10]) if len(f) > 10 else -1.0
                rows[int(f[0])].append([x, y, x + w, y + h, float(f[1]), float(f[6]), cls_id])
        return cls({frame: np.array(r, dtype=float) for frame, r in rows.items()})

    def frames_in(self, first: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """(frame number, rows) for frame numbers in [first, stop), ascending."""
        for frame in sorted(f for f in self.by_frame if first <= f < stop):
            yield frame, self.by_frame[frame]


def match_tracks(previous: ChunkTracks, current: ChunkTracks, first: int, stop: int) -> dict[int, int]:
    """Track id of `current` -> track id of `previous`, matched over frame numbers [first, stop)."""
    sums: dict[tuple[int, int], float] = defaultdict(float)
    common: dict[tuple[int, int], int] = defaultdict(int)
    for frame, rows in current.frames_in(first, stop):
        before = previous.by_frame.get(frame)
        if before is None or not len(before):
            continue
        ious = iou_batch(rows, before)
        for i, j in zip(*np.nonzero(ious > 0)):
            pair = (int(rows[i, 4]), int(before[j, 4]))
            sums[pair] += float(ious[i, j])
            common[pair] += 1
    pairs = {pair: sums[pair] / n for pair, n in common.items() if n >= MIN_COMMON_FRAMES and sums[pair] / n >= MATCH_IOU}
    if not pairs:
        return {}
    mine = sorted({a for a, _ in pairs})
    theirs = sorted({b for _, b in pairs})
    cost = np.ones((len(mine), len(theirs)))
    for (a, b), score in pairs.items():
        cost[mine.index(a), theirs.index(b)] = 1.0 - score
    matched = {}
    for i, j in linear_assignment(cost):
        if (mine[i], theirs[j]) in pairs:
            matched[mine[i]] = theirs[j]
    return matched


@dataclass
class IdSpace:
    """Chunk-local track ids -> ids of the whole video."""

    next_id: int = 1
    maps: list[dict[int, int]] = field(default_factory=list)

    def add_chunk(self, tracks: ChunkTracks, chunk: Chunk, matched_to_previous: dict[int, int]) -> BoundaryStats:
        previous = self.maps[-1] if self.maps else {}
        mapping: dict[int, int] = {}
        for local, earlier in matched_to_previous.items():
            if earlier in previous:
                mapping[local] = previous[earlier]
        new = 0
        for _frame, rows in tracks.frames_in(chunk.start + 1, chunk.end + 1):
            for local in rows[:, 4].astype(int).tolist():
                if local not in mapping:
                    mapping[local] = local if not self.maps else self.next_id  # the first chunk keeps its ids
                    new += 1
                    self.next_id = max(self.next_id, mapping[local] + 1)
        self.maps.append(mapping)
        return BoundaryStats(chunk=chunk.index, matched=len(matched_to_previous), new=new)


def own_rows(tracks: ChunkTracks, chunk: Chunk, mapping: dict[int, int]) -> Iterator[str]:
    """The chunk's MOT rows of the frames it owns, with the ids of the whole video."""
    for frame, rows in tracks.frames_in(chunk.start + 1, chunk.end + 1):
        for x1, y1, x2, y2, tid, score, _cls in rows:
            yield f"{frame},{mapping[int(tid)]},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n"


def copy_owned_lines(source: Path, chunk: Chunk, out: IO[str]) -> int:
    """Copy the JSON lines of `source` whose `frame` the chunk owns (detections); returns how many."""
    copied = 0
    with open(source, encoding="utf-8") as file:
        for line in file:
            if chunk.start < _frame_of(line) <= chunk.end:
                out.write(line if line.endswith("\n") else line + "\n")
                copied += 1
    return copied


def _frame_of(line: str) -> int:
    prefix = '{"frame":'  # DetectionsWriter writes frame first, compactly
    if line.startswith(prefix):
        return int(line[len(prefix):line.index(",", len(prefix))])
    return int(json.loads(line)["frame"])


class EventReplay:
    """Events of the owned frames, relabelled, checked for consistency and summed into counts."""

    def __init__(self, config: JobConfig) -> None:
        self.counts = Counts(
            lines={line.name: LineCounts(crossings={d: 0 for d in line.directions}) for line in config.lines},
            zones={zone.name: ZoneCounts() for zone in config.zones},
        )
        self._inside: set[tuple[str, int]] = set()
        self.dropped = 0

    def take(self, event: dict, mapping: dict[int, int]) -> dict | None:
        event = {**event, "track_id": mapping.get(int(event["track_id"]), int(event["track_id"]))}
        tid, cls = event["track_id"], event.get("class_name", "")
        if "line" in event:
            line = self.counts.lines[event["line"]]
            line.crossings[event["direction"]] = line.crossings.get(event["direction"], 0) + 1
            by_class = line.by_class.setdefault(cls, {d: 0 for d in line.crossings})
            by_class[event["direction"]] = by_class.get(event["direction"], 0) + 1
            return event
        zone, key = self.counts.zones[event["zone"]], (event["zone"], tid)
        per_class = zone.by_class.setdefault(cls, ZoneClassCounts())
        if event["kind"] == "enter":
            if key in self._inside:
                self.dropped += 1
                return None
            self._inside.add(key)
            zone.entries += 1
            zone.inside += 1
            zone.max_inside = max(zone.max_inside, zone.inside)
            per_class.entries += 1
            per_class.inside += 1
        else:
            if key not in self._inside:
                self.dropped += 1
                return None
            self._inside.discard(key)
            zone.exits += 1
            zone.inside -= 1
            zone.dwell_seconds = round(zone.dwell_seconds + float(event.get("dwell", 0.0)), 3)
            per_class.exits += 1
            per_class.inside -= 1
        return event


def owned_events(path: Path, chunk: Chunk) -> Iterator[dict]:
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.strip():
                event = json.loads(line)
                if chunk.start < int(event["frame"]) <= chunk.end:
                    yield event


def boundary_stats(
    previous: ChunkTracks, previous_chunk: Chunk, matched: dict[int, int], stats: BoundaryStats
) -> BoundaryStats:
    """Add `ended`: tracks of the previous chunk alive in its last owned frames that nothing continues."""
    last = [rows for _f, rows in previous.frames_in(previous_chunk.end - 1, previous_chunk.end + 1)]
    alive = {int(t) for rows in last for t in rows[:, 4]}
    return stats.model_copy(update={"ended": len(alive - set(matched.values()))})


def stitch_tracks(chunks: Sequence[Chunk], paths: Sequence[Path], out: IO[str]) -> tuple[IdSpace, list[BoundaryStats], int, set[int]]:
    """Write the stitched MOT rows of every chunk's own frames to `out`, holding two chunks' tracks at a time.

    Returns the id space, each boundary's statistics (the first chunk's: all its tracks new), the rows
    written and the distinct ids."""
    space = IdSpace()
    stats: list[BoundaryStats] = []
    rows, ids = 0, set()
    previous: ChunkTracks | None = None
    for k, (chunk, path) in enumerate(zip(chunks, paths)):
        current = ChunkTracks.read(path)
        matched = match_tracks(previous, current, chunk.read_from + 1, chunk.start + 1) if previous is not None else {}
        boundary = space.add_chunk(current, chunk, matched)
        if previous is not None:
            boundary = boundary_stats(previous, chunks[k - 1], matched, boundary)
        stats.append(boundary)
        mapping = space.maps[-1]
        for row in own_rows(current, chunk, mapping):
            out.write(row)
            rows += 1
        ids.update(mapping[t] for _f, r in current.frames_in(chunk.start + 1, chunk.end + 1) for t in r[:, 4].astype(int).tolist())
        previous = current
    return space, stats, rows, ids
