"""Frame rate control: even dropping by count (files), by time (cameras), and pacing in real time."""

from __future__ import annotations

import pytest

from vidfleet_capture.rate import FrameGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeStop:
    """Records the sleeps asked for and advances the clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, delay: float) -> bool:
        self.waits.append(round(delay, 6))
        self.clock.now += delay
        return False

    def is_set(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("wanted", "source", "pattern"),
    [
        (None, 15.0, [1, 1, 1, 1, 1, 1]),
        (30.0, 15.0, [1, 1, 1, 1, 1, 1]),
        (5.0, 15.0, [1, 0, 0, 1, 0, 0]),
        (10.0, 15.0, [1, 0, 1, 1, 0, 1]),
        (7.5, 15.0, [1, 0, 1, 0, 1, 0]),
    ],
)
def test_files_drop_frames_evenly(wanted: float | None, source: float, pattern: list[int]) -> None:
    gate = FrameGate(wanted_fps=wanted, source_fps=source, realtime=False, live=False)
    assert [int(gate.keep()) for _ in pattern] == pattern


def test_dropping_keeps_the_wanted_share_over_a_long_run() -> None:
    gate = FrameGate(wanted_fps=12.0, source_fps=29.97, realtime=False, live=False)
    kept = sum(gate.keep() for _ in range(2997))
    assert kept == pytest.approx(1200, abs=1)


def test_real_time_paces_kept_frames_at_the_output_rate() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    gate = FrameGate(wanted_fps=10.0, source_fps=15.0, realtime=True, live=False, clock=clock)
    for _ in range(5):
        assert gate.wait_turn(stop)
    assert stop.waits == [0.1, 0.1, 0.1, 0.1]  # the first frame goes at once


def test_real_time_starts_a_new_schedule_after_a_stall_instead_of_bursting() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    gate = FrameGate(wanted_fps=None, source_fps=20.0, realtime=True, live=False, clock=clock)
    gate.wait_turn(stop)
    clock.now += 5.0  # the source stalled
    gate.wait_turn(stop)
    gate.wait_turn(stop)
    assert stop.waits == [0.05]


def test_as_fast_as_possible_never_sleeps() -> None:
    clock = FakeClock()
    stop = FakeStop(clock)
    gate = FrameGate(wanted_fps=5.0, source_fps=15.0, realtime=False, live=False, clock=clock)
    assert all(gate.wait_turn(stop) for _ in range(10)) and stop.waits == []


def test_cameras_are_never_paced_and_drop_by_arrival_time() -> None:
    clock = FakeClock()
    gate = FrameGate(wanted_fps=10.0, source_fps=30.0, realtime=True, live=True, clock=clock)
    assert not gate.paced
    kept = 0
    for _ in range(300):  # 10 s of a 30 fps camera
        kept += gate.keep()
        clock.now += 1 / 30
    assert kept == pytest.approx(100, abs=2)
