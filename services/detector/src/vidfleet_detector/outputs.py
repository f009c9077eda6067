"""A video's output files, written under temporary names and renamed only when the video succeeds.

A task that runs twice (redelivery) therefore produces each file once, and a crash leaves no
half-written file under a final name.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from vidfleet_common.errors import VidfleetError
from vidfleet_common.staging import temp_name

TRACKS_SUFFIX = ".tracks.txt"
DETECTIONS_SUFFIX = ".detections.jsonl"
ANNOTATED_SUFFIX = ".annotated.mp4"
PARTIAL_MARK = ".partial"


class OutputError(VidfleetError):
    kind = "output"


class StagedFile:
    """A file written at a hidden temporary path beside its final one.

    The temporary name carries its `owner` (a worker incarnation) when given (vidfleet_common.staging):
    whoever learns that the owner died can remove exactly what it left behind.
    """

    def __init__(self, folder: Path, name: str, suffix: str, *, owner: str | None = None) -> None:
        self.final = folder / f"{name}{suffix}"
        self.partial = folder / f"{name}{PARTIAL_MARK}{suffix}"
        final = self.final
        final.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name keeps the final suffix: OpenCV picks the container from it.
        tag = f"{owner}-{secrets.token_hex(4)}" if owner else secrets.token_hex(4)
        self.temp = final.with_name(temp_name(final.name, tag))

    def commit(self) -> None:
        os.replace(self.temp, self.final)

    def discard(self, *, keep_partial: bool) -> None:
        if not self.temp.exists():
            return
        if keep_partial:
            os.replace(self.temp, self.partial)
        else:
            self.temp.unlink()


class TracksWriter:
    """MOT challenge rows: frame,id,x,y,w,h,conf,-1,-1,-1 (frames from 1); `with_class` adds the class id
    as an eleventh column (a chunk's tracks, which the stitcher reads back to draw the annotated video)."""

    def __init__(self, staged: StagedFile, *, with_class: bool = False) -> None:
        self.staged = staged
        self._with_class = with_class
        self._file: IO[str] = open(staged.temp, "w", encoding="utf-8", buffering=1 << 16)
        self.rows = 0
        self.ids: set[int] = set()

    def write(self, frame_number: int, tracks: np.ndarray) -> None:
        """`tracks` is Sort.update's (M,7) array: x1,y1,x2,y2,id,score,class."""
        lines = []
        for x1, y1, x2, y2, track_id, score, cls in tracks:
            tid = int(track_id)
            self.ids.add(tid)
            extra = f",{int(cls)}" if self._with_class else ""
            lines.append(f"{frame_number},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1{extra}\n")
        self._file.writelines(lines)
        self.rows += len(lines)

    def close(self) -> None:
        self._file.close()


class DetectionsWriter:
    """Every raw detection, one JSON object per line, buffered up to `max_in_memory` then flushed."""

    def __init__(self, staged: StagedFile, names: dict[int, str], *, max_in_memory: int) -> None:
        self.staged = staged
        self._names = names
        self._max = max_in_memory
        self._buffer: list[str] = []
        self._file: IO[str] = open(staged.temp, "w", encoding="utf-8")
        self.count = 0

    def write(self, frame_number: int, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> None:
        for (x1, y1, x2, y2), score, cls in zip(boxes.tolist(), scores.tolist(), class_ids.tolist()):
            self._buffer.append(
                json.dumps(
                    {
                        "frame": frame_number,
                        "class_id": cls,
                        "class_name": self._names.get(cls, str(cls)),
                        "conf": round(score, 4),
                        "box": [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)],
                    },
                    separators=(",", ":"),
                )
            )
        self.count += len(scores)
        if len(self._buffer) >= self._max:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._file.write("\n".join(self._buffer) + "\n")
            self._file.flush()
            self._buffer.clear()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def close(self) -> None:
        self.flush()
        self._file.close()


class AnnotatedWriter:
    """An MP4 of the processed frames with tracks drawn on them."""

    def __init__(self, staged: StagedFile, *, fps: float, width: int, height: int) -> None:
        self.staged = staged
        self._writer = cv2.VideoWriter(str(staged.temp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not self._writer.isOpened():
            raise OutputError(f"{staged.final}: cannot open an MP4 writer ({width}x{height} at {fps:.1f} fps)")

    def write(self, image: np.ndarray) -> None:
        self._writer.write(image)

    def close(self) -> None:
        self._writer.release()
