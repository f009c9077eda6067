"""The pipeline's threads: frames leave in sequence order whatever order the encoders finish in."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np

from vidfleet_capture.pipeline import CaptureStats, Encoding, Pipeline
from vidfleet_capture.rate import FrameGate
from vidfleet_capture.sources import Source
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.streams import FrameMessage


class FakeCapture:
    """A 'file' of `frames` tiny images whose pixels carry their index."""

    def __init__(self, frames: int) -> None:
        self.index, self.frames = 1, frames

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.index >= self.frames:
            return False, None
        self.index += 1
        return True, np.full((8, 8, 3), self.index - 1, np.uint8)

    def grab(self) -> bool:
        return self.read()[0]

    def release(self) -> None:
        pass


class JitteryEncoding(Encoding):
    """Takes a random time per frame (so encoders finish out of order) and cannot encode every 7th frame."""

    def encode(self, seq: int, ts: int, image: np.ndarray) -> dict[str, Any] | None:
        time.sleep(random.uniform(0, 0.004))
        if seq % 7 == 3:
            return None
        return FrameMessage(seq, ts, 8, 8, "jpg", bytes([int(image[0, 0, 0])])).fields()


def test_frames_are_appended_in_order_and_unencodable_ones_skipped(client, keys: RedisKeys, tmp_path) -> None:
    (tmp_path / "fake.mp4").write_bytes(b"x")  # exists: its end is the end of the file, not a lost source
    stats = CaptureStats()
    pipeline = Pipeline(
        source=Source("file", str(tmp_path / "fake.mp4"), "fake"), capture=FakeCapture(120), first_image=np.zeros((8, 8, 3), np.uint8),
        gate=FrameGate(wanted_fps=None, source_fps=30.0, realtime=False, live=False), encoding=JitteryEncoding("jpg"),
        redis=client, key=keys.frames("order"), maxlen=1000, stats=stats, encoders=4,
    )
    pipeline.start()
    assert pipeline.join(timeout=20)

    got = [FrameMessage.from_fields(f) for _, f in client.xrange(keys.frames("order"))]
    expected = [i for i in range(120) if i % 7 != 3]
    assert [f.seq for f in got] == expected
    assert [f.data[0] for f in got] == expected  # each frame's own image
    assert all(b.ts > a.ts for a, b in zip(got, got[1:]))
    assert (stats.appended, stats.encoded, stats.seq) == (len(expected), len(expected), 119)
