"""Counting in `process_video`: one Counter per video, its events written to `<video>.events.jsonl`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO

import numpy as np

from vidfleet_common.counting import check_class_names
from vidfleet_common.counts import Counts
from vidfleet_common.job_config import JobConfig
from vidfleet_detector.analytics.counter import Counter, Event
from vidfleet_detector.analytics.drawing import draw_counting
from vidfleet_detector.analytics.geometry import resolve
from vidfleet_detector.outputs import StagedFile

EVENTS_SUFFIX = ".events.jsonl"
_FLUSH_EVERY = 256


class EventsWriter:
    """One JSON object per line, in the order the events happened."""

    def __init__(self, staged: StagedFile) -> None:
        self.staged = staged
        self._file: IO[str] = open(staged.temp, "w", encoding="utf-8")
        self._buffer: list[str] = []
        self.count = 0

    def write(self, events: Iterable[Event]) -> None:
        for event in events:
            self._buffer.append(json.dumps(event, separators=(",", ":")))
            self.count += 1
        if len(self._buffer) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._file.write("\n".join(self._buffer) + "\n")
            self._buffer.clear()

    def close(self) -> None:
        self.flush()
        self._file.close()


class VideoCounting:
    """The counter of one video and its events file. Raises ConfigError (naming the key) when a class
    is unknown to the model or a pixel coordinate lies outside this video's frame."""

    def __init__(self, config: JobConfig, names: dict[int, str], *, width: int, height: int, fps: float | None, staged: StagedFile) -> None:
        check_class_names(config.lines, config.zones, names, model=config.model)
        self.geometry = resolve(config.lines, config.zones, width, height)
        self.counter = Counter(self.geometry, names)
        self.fps = fps or 25.0
        self.writer = EventsWriter(staged)

    def frame(self, index: int, rows: np.ndarray, alive: Iterable[int]) -> list[Event]:
        """Count frame `index` (0-based); events carry its number from 1 and its time in the video."""
        events = self.counter.update(index + 1, index / self.fps, rows, alive)
        if events:
            self.writer.write(events)
        return events

    def draw(self, image: np.ndarray) -> np.ndarray:
        return draw_counting(image, self.geometry, self.counter.counts)

    def finish(self, frames_read: int) -> None:
        """The video ended after `frames_read` frames: tracks still inside zones exit."""
        last = max(frames_read - 1, 0)
        self.writer.write(self.counter.finish(last + 1, last / self.fps))

    @property
    def counts(self) -> Counts:
        return self.counter.counts

    def close(self) -> None:
        self.writer.close()
