"""The chunk reader on a real H.264 with B-frames: every frame read by exactly one chunk's owned part,
found by its timestamp after a seek, with and without skip_frames; a truncated video fails in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.videos import frame_code, write_h264_numbered
from vidfleet_common.chunks import probe_video, plan_chunks
from vidfleet_common.errors import VideoError
from vidfleet_detector.decode import FrameReader
from vidfleet_detector.split.reader import ChunkReader

FRAMES = 230


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_h264_numbered(tmp_path_factory.mktemp("h264") / "numbered.mp4", FRAMES, fps=10, gop=25)


def test_the_probe_counts_frames_and_keyframes_like_the_decoder(h264: Path) -> None:
    probe = probe_video(str(h264))
    reader = FrameReader(str(h264))
    decoded = list(reader)
    assert probe.frames == len(decoded) == FRAMES
    assert probe.constant_rate and probe.fps == pytest.approx(10.0)
    assert probe.keyframes[0] == 0 and len(probe.keyframes) >= FRAMES // 25
    assert [frame_code(f.image) for f in decoded] == [i % 256 for i in range(FRAMES)]


@pytest.mark.parametrize("skip_frames", [1, 3])
def test_chunks_read_exactly_their_frames(h264: Path, skip_frames: int) -> None:
    chunks = plan_chunks(probe_video(str(h264)), 5.0, 1.5)
    assert len(chunks) == 4 and all(c.read_from < c.start for c in chunks[1:])
    owned: list[int] = []
    for chunk in chunks:
        reader = ChunkReader(str(h264), chunk, stride=skip_frames)
        frames = list(reader)
        expected = [i for i in range(chunk.read_from, chunk.end) if i % skip_frames == 0]
        assert [f.index for f in frames] == expected
        assert [frame_code(f.image) for f in frames] == [i % 256 for i in expected]  # the right picture, not only the right number
        assert reader.frames_read == chunk.end - chunk.read_from
        owned += [f.index for f in frames if chunk.start <= f.index < chunk.end]
    assert owned == list(range(0, FRAMES, skip_frames))


def test_a_chunk_past_the_end_of_a_truncated_video_fails_naming_chunk_and_time(h264: Path, tmp_path: Path) -> None:
    chunks = plan_chunks(probe_video(str(h264)), 5.0, 1.5)
    short = write_h264_numbered(tmp_path / "short.mp4", 180, fps=10, gop=25)  # the plan expects 230 frames
    with pytest.raises(VideoError, match=r"chunk 4/4 \(00:00:15-00:00:23\): the video ended at frame 180 of 230"):
        list(ChunkReader(str(short), chunks[-1]))
