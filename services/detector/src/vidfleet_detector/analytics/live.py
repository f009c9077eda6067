"""Counting in the live detector: one Counter per stream, resumed from and committed to Redis.

The counter's state (counts, per-track sides, the next track id) is saved by the same lease-checked
script that appends the tracks and events and acknowledges the frames (live/leases.py), so what is in
Redis always matches the frames acknowledged. A detector that takes a stream over loads that state,
starts its tracker at the next id (ids never repeat in a stream) and continues the counts. Its tracks
are new objects (docs/counting.md): the old tracks exit their zones as `lost`, and a new track's first
position only sets its side of a line, so no crossing is counted twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from vidfleet_common.contracts import RedisKeys
from vidfleet_common.counting import check_class_names
from vidfleet_common.errors import ConfigError
from vidfleet_common.job_config import JobConfig
from vidfleet_common.streams import FrameMessage
from vidfleet_detector.analytics.counter import Counter, Event
from vidfleet_detector.analytics.geometry import resolve
from vidfleet_detector.analytics.metrics import CountingMetrics

log = logging.getLogger("vidfleet.detector.live.counting")


class LiveCounting:
    """Counting of one stream held by this detector. Raises ConfigError when the model lacks a class."""

    def __init__(
        self, redis: Any, keys: RedisKeys, stream: str, config: JobConfig, names: dict[int, str], *, metrics: CountingMetrics | None = None
    ) -> None:
        check_class_names(config.lines, config.zones, names, model=config.model)
        self.stream = stream
        self.config = config
        self.names = names
        self.metrics = metrics
        raw = redis.hget(keys.counting_state(stream), "state")
        self._saved: dict[str, Any] | None = json.loads(raw) if raw else None
        self.next_track_id = int((self._saved or {}).get("next_track_id", 1))
        self.events = int((self._saved or {}).get("events", 0))  # events numbered from 1, without gaps: `n`
        self.counter: Counter | None = None
        self.error: str | None = None
        self.pending: list[Event] = []

    def observe(self, message: FrameMessage, rows: np.ndarray, track_ids: set[int], next_track_id: int) -> None:
        """Count one tracked frame; its events wait in `pending` until committed."""
        if self.error is not None:
            return
        counter = self.counter
        if counter is None or (counter.geometry.width, counter.geometry.height) != (message.width, message.height):
            try:
                geometry = resolve(self.config.lines, self.config.zones, message.width, message.height)
            except ConfigError as exc:
                self.error = str(exc)
                log.warning("stream %s: counting off: %s", self.stream, exc)
                return
            state = counter.state() if counter is not None else self._saved
            counter = self.counter = Counter.from_state(geometry, self.names, state)
            if self.metrics is not None:
                self.metrics.stream_started(self.stream, geometry, self.names, counter.inside())
        for event in counter.update(message.seq, message.ts / 1e9, rows, track_ids):
            self.events += 1
            event.update(stream=self.stream, seq=message.seq, ts=message.ts, n=self.events)
            self.pending.append(event)
        self.next_track_id = next_track_id

    def commit_args(self) -> tuple[list[str], tuple[str, str] | None]:
        """The pending events (JSON) and the state to save with them, for Leases.publish_and_ack."""
        if self.counter is None:
            return [], None
        state = {**self.counter.state(), "next_track_id": self.next_track_id, "events": self.events}
        events = [json.dumps(e, separators=(",", ":")) for e in self.pending]
        return events, (json.dumps(state, separators=(",", ":")), self.counter.counts.model_dump_json())

    def committed(self) -> None:
        """The pending events are in Redis: count them in the metrics and forget them."""
        if self.metrics is not None and self.counter is not None:
            self.metrics.observe(self.stream, self.pending, self.counter.inside())
        self.pending = []

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.stream_stopped(self.stream)
