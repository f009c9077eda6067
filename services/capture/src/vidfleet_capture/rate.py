"""Frame rate control: which source frames to keep, and when to hand them on.

Files (and http(s) sources) are counted: a source frame is kept when the wanted rate says so
(fps lower than the file's drops frames evenly), and in real time the k-th kept frame waits
for its moment t0 + k / fps. Live cameras pace themselves: frames are kept by their arrival time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

RESYNC_LATE_SECONDS = 1.0  # later than this behind schedule (a reconnect, a stall): start a new schedule


class FrameGate:
    def __init__(
        self,
        *,
        wanted_fps: float | None,
        source_fps: float | None,
        realtime: bool,
        live: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source_fps = source_fps
        self.live = live
        self.clock = clock
        # The rate frames leave at: the one asked for, else the source's own.
        self.out_fps = wanted_fps or source_fps
        self.paced = realtime and not live and self.out_fps is not None
        # Counted dropping: keep `ratio` of the source's frames, evenly.
        self.ratio = wanted_fps / source_fps if (wanted_fps and source_fps and wanted_fps < source_fps) else 1.0
        self._index = 0  # source frames seen (counted mode)
        self._kept = 0  # frames kept since the schedule started
        self._t0: float | None = None
        self._next_live = 0.0
        self._tolerance = 0.5 / source_fps if source_fps else 0.005

    def keep(self) -> bool:
        """Called once per source frame, before decoding it: False means grab and drop."""
        if self.live:
            if not self.out_fps or not self.source_fps or self.out_fps >= self.source_fps:
                return True
            now = self.clock()
            if now + self._tolerance < self._next_live:
                return False
            period = 1.0 / self.out_fps
            self._next_live = max(self._next_live + period, now - period)
            return True
        i = self._index
        self._index += 1
        if self.ratio >= 1.0:
            return True
        return math.floor(i * self.ratio + 1e-9) > math.floor((i - 1) * self.ratio + 1e-9)

    def wait_turn(self, stop: threading.Event) -> bool:
        """Real time: sleep until the next kept frame is due. False when `stop` was set meanwhile."""
        if not self.paced:
            return not stop.is_set()
        assert self.out_fps is not None
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self._kept / self.out_fps
        if now - due > RESYNC_LATE_SECONDS:
            self._t0, self._kept, due = now, 0, now
        self._kept += 1
        delay = due - now
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()

    def resync(self) -> None:
        """After a reconnect: the next frame starts a new schedule instead of catching up in a burst."""
        self._t0 = None
        self._kept = 0
