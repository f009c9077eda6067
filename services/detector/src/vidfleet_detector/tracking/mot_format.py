"""MOTChallenge text files: read ``det.txt`` detections, write tracker rows, run SORT over a file.

Row layout: ``frame, id, bb_left, bb_top, bb_width, bb_height, confidence, x, y, z`` with
frames numbered from 1. This mirrors the ``__main__`` loop of the reference ``sort.py``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from vidfleet_common.errors import VidfleetError

from .sort import Sort

__all__ = [
    "MOT_ROW_FORMAT",
    "MotFormatError",
    "format_mot_row",
    "iter_mot_frames",
    "read_mot_detections",
    "track_mot_file",
    "write_mot_rows",
]

#: The reference's output format: frame, id, left, top, width, height, then constants.
MOT_ROW_FORMAT = "%d,%d,%.2f,%.2f,%.2f,%.2f,1,-1,-1,-1"

_MIN_COLUMNS = 7  # frame, id, left, top, width, height, confidence; x, y, z are optional


class MotFormatError(VidfleetError, ValueError):
    """A MOT text file cannot be parsed; the message names the file, the line and the problem."""

    def __init__(self, path: Path, line_number: int, problem: str) -> None:
        super().__init__(f"{path}: line {line_number}: {problem}")
        self.path = path
        self.line_number = line_number
        self.problem = problem


def read_mot_detections(det_path: Path) -> dict[int, np.ndarray]:
    """Read a MOT ``det.txt`` into ``{frame: (N, 5) float64 [x1, y1, x2, y2, score]}``.

    Only frames with at least one row appear; rows keep their file order within a frame.
    Blank lines are skipped. Raises ``FileNotFoundError`` if the file does not exist and
    :class:`MotFormatError` on a malformed row.
    """
    det_path = Path(det_path)
    try:
        text = det_path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FileNotFoundError(exc.errno, "MOT detection file not found", str(det_path)) from None
    except UnicodeDecodeError as exc:
        raise MotFormatError(det_path, _line_of_byte(det_path, exc.start), "not UTF-8 text") from None

    rows: dict[int, list[list[float]]] = {}
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        frame, box = _parse_det_line(det_path, line_number, line)
        rows.setdefault(frame, []).append(box)
    return {frame: np.array(boxes, dtype=np.float64) for frame, boxes in rows.items()}


def _line_of_byte(path: Path, byte_offset: int) -> int:
    with open(path, "rb") as f:
        return f.read(byte_offset).count(b"\n") + 1


def _parse_det_line(path: Path, line_number: int, line: str) -> tuple[int, list[float]]:
    fields = [field.strip() for field in line.split(",")]
    if len(fields) < _MIN_COLUMNS:
        raise MotFormatError(
            path, line_number, f"expected at least {_MIN_COLUMNS} comma-separated columns, got {len(fields)}"
        )
    values = []
    for column, field in enumerate(fields[:_MIN_COLUMNS], start=1):
        try:
            value = float(field)
        except ValueError:
            raise MotFormatError(path, line_number, f"column {column}: expected a number, got {field!r}") from None
        if not math.isfinite(value):
            raise MotFormatError(path, line_number, f"column {column}: expected a finite number, got {field!r}")
        values.append(value)
    frame, _id, left, top, width, height, score = values
    if frame < 1 or frame != int(frame):
        raise MotFormatError(path, line_number, f"column 1 (frame): expected an integer >= 1, got {fields[0]!r}")
    if width <= 0 or height <= 0:
        raise MotFormatError(
            path, line_number, f"columns 5-6 (width, height): expected both > 0, got {fields[4]!r}, {fields[5]!r}"
        )
    # x2 = left + width in float64, exactly as the reference's `dets[:, 2:4] += dets[:, 0:2]`.
    return int(frame), [left, top, left + width, top + height, score]


def iter_mot_frames(
    detections: dict[int, np.ndarray], last_frame: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame, dets)`` for every frame 1..last_frame, with an empty (0, 5) array where none.

    ``last_frame`` defaults to the largest frame in ``detections`` (0 frames if it is empty).
    """
    if last_frame is None:
        last_frame = max(detections, default=0)
    for frame in range(1, last_frame + 1):
        dets = detections.get(frame)
        yield frame, (dets if dets is not None else np.empty((0, 5)))


def format_mot_row(frame: int, track: np.ndarray) -> str:
    """Format one row of ``Sort.update``'s output (``[x1, y1, x2, y2, id, ...]``) as a MOT line, no newline."""
    d = track
    return MOT_ROW_FORMAT % (frame, d[4], d[0], d[1], d[2] - d[0], d[3] - d[1])


def write_mot_rows(out_path: Path, lines: Iterable[str]) -> int:
    """Write ``lines`` (one per row, no newlines) to ``out_path`` atomically; return how many.

    The text goes to a temporary file in the same directory, which then replaces
    ``out_path``, so readers never see a half-written file.
    """
    out_path = Path(out_path)
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line)
                f.write("\n")
                count += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, out_path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return count


def track_mot_file(
    det_path: Path, out_path: Path, *, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3
) -> int:
    """Run a fresh :class:`Sort` over every frame of a MOT ``det.txt`` and write its tracks to ``out_path``.

    Frames 1 up to the largest frame in the file are all processed, including those
    without detections. Rows are written per frame in the tracker's output order, in
    ``MOT_ROW_FORMAT``. Returns the number of rows written.
    """
    tracker = Sort(max_age=max_age, min_hits=min_hits, iou_threshold=iou_threshold)
    detections = read_mot_detections(det_path)

    def lines() -> Iterator[str]:
        for frame, dets in iter_mot_frames(detections):
            for track in tracker.update(dets):
                yield format_mot_row(frame, track)

    return write_mot_rows(out_path, lines())
