"""A progress bar per video on stderr: frames done / total and frames per second."""

from __future__ import annotations

import sys

from tqdm import tqdm

from vidfleet_common.inputs import VideoRef
from vidfleet_common.results import VideoResult


class TqdmProgress:
    """ProgressSink drawing one tqdm bar per video."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._bar: tqdm | None = None
        self._done = 0

    def start(self, ref: VideoRef, total_frames: int | None) -> None:
        self._done = 0
        self._bar = tqdm(
            total=total_frames,
            desc=ref.name,
            unit="frame",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5,
            disable=not self._enabled,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]",
        )

    def advance(self, frames_read: int) -> None:
        if self._bar is not None:
            self._bar.update(frames_read - self._done)
            self._done = frames_read

    def finish(self, result: VideoResult) -> None:
        if self._bar is not None:
            self._bar.update(max(0, result.frames - self._done))
            self._bar.close()
            self._bar = None
