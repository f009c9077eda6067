"""The chunk plan: every frame owned once, lead-ins from keyframes, splitting off where it cannot be exact."""

from __future__ import annotations

import pytest

from vidfleet_common.chunks import VideoProbe, chunk_unit, plan_chunks, why_not_split
from vidfleet_common.errors import ConfigError
from vidfleet_common.job_config import JobConfig


def _probe(frames: int, fps: float = 10.0, keyframes: tuple[int, ...] | None = None, constant: bool = True) -> VideoProbe:
    return VideoProbe(frames=frames, fps=fps, first_pts=0, frame_pts=512.0,
                      keyframes=keyframes if keyframes is not None else tuple(range(0, frames, 12)), constant_rate=constant)


@pytest.mark.parametrize(("frames", "split", "overlap", "count"), [
    (1000, 25.0, 3.0, 4), (1001, 25.0, 3.0, 4), (999, 25.0, 0.0, 3), (600, 30.0, 5.0, 2), (100, 3.0, 1.0, 3),
])
def test_every_frame_is_owned_by_exactly_one_chunk(frames: int, split: float, overlap: float, count: int) -> None:
    chunks = plan_chunks(_probe(frames), split, overlap)
    assert len(chunks) == count
    owned = [i for c in chunks for i in range(c.start, c.end)]
    assert owned == list(range(frames))
    assert {c.count for c in chunks} == {count}


def test_a_lead_in_starts_at_a_keyframe_at_least_the_overlap_before() -> None:
    probe = _probe(1000, keyframes=(0, 12, 100, 240, 250, 490, 740, 760))
    chunks = plan_chunks(probe, 25.0, 3.0)
    assert chunks[0].read_from == 0
    for chunk in chunks[1:]:
        assert chunk.read_from in probe.keyframes
        assert chunk.start - chunk.read_from >= 30
        assert chunk.seek_pts == chunk.read_from * 512
    assert [c.read_from for c in chunks[1:]] == [100, 250, 490]  # 740 and 760 are later than 750 - 30


@pytest.mark.parametrize(("probe", "reason"), [
    (_probe(199), "shorter than two chunks"),
    (_probe(10_000, constant=False), "variable frame rate"),
])
def test_no_split_where_it_cannot_help_or_be_exact(probe: VideoProbe, reason: str) -> None:
    assert plan_chunks(probe, 10.0, 2.0) == []
    assert reason in why_not_split(probe, 10.0)


def test_span_names_the_chunk_and_its_times() -> None:
    chunk = plan_chunks(_probe(100_000, fps=25.0), 1800.0, 3.0)[1]
    assert chunk.span() == "chunk 2/2 (00:30:00-01:06:40)"
    assert chunk_unit("cam.mp4", 2) == "cam.mp4.chunk002"


@pytest.mark.parametrize(("config", "key"), [({"split_seconds": 0}, "split_seconds"), ({"split_overlap_seconds": -1.0}, "split_overlap_seconds")])
def test_split_settings_are_validated(config: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        JobConfig.from_mapping(config)
