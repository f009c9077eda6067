"""The stitcher on hand-made chunk files: ids matched one-to-one in the overlap, frames taken from their
owner only, counts replayed from the kept events; a failed chunk fails the video naming the chunk and time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidfleet_common.chunks import Chunk
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import VideoOutcome, VideoOutputs, VideoResult
from vidfleet_detector.split.run import stitch_video
from vidfleet_detector.split.stitch import ChunkTracks, match_tracks

FPS = 10.0


def _chunk(index: int, start: int, end: int, read_from: int, count: int = 2) -> Chunk:
    return Chunk(index=index, count=count, start=start, end=end, read_from=read_from, seek_pts=read_from, first_pts=0, frame_pts=1.0, fps=FPS)


def _rows(path: Path, tracks: dict[int, tuple[int, int]], frames: range) -> None:
    """Track id -> (x at frame 0, dx per frame); frames are indices (written as numbers from 1)."""
    with open(path, "a") as out:
        for i in frames:
            for tid, (x0, dx) in tracks.items():
                out.write(f"{i + 1},{tid},{x0 + dx * i:.2f},10.00,20.00,20.00,0.9000,-1,-1,-1,0\n")


def _chunk_files(folder: Path, unit: str, tracks: dict[int, tuple[int, int]], frames: range) -> VideoResult:
    _rows(folder / f"{unit}.tracks.txt", tracks, frames)
    with open(folder / f"{unit}.detections.jsonl", "w") as out:
        for i in frames:
            out.write(json.dumps({"frame": i + 1, "class_id": 0, "class_name": "circle", "conf": 0.9, "box": [0, 0, 1, 1]}, separators=(",", ":")) + "\n")
    return VideoResult(video="v.mp4", name=unit, outcome=VideoOutcome.SUCCEEDED, frames=len(frames), seconds=1.0, width=200, height=100,
                       outputs=VideoOutputs(tracks=f"{unit}.tracks.txt", detections=f"{unit}.detections.jsonl"))


def test_tracks_match_one_to_one_above_the_iou_threshold(tmp_path: Path) -> None:
    before, after = tmp_path / "a.txt", tmp_path / "b.txt"
    _rows(before, {1: (0, 1), 2: (100, -1), 3: (150, 0)}, range(0, 20))
    _rows(after, {7: (0, 1), 8: (100, -1), 9: (158, 0)}, range(10, 30))  # 9 overlaps 3 at IoU 0.43: no match
    matched = match_tracks(ChunkTracks.read(before), ChunkTracks.read(after), 11, 21)
    assert matched == {7: 1, 8: 2}


def test_stitched_files_take_each_frame_from_its_owner_with_one_id_space(tmp_path: Path) -> None:
    chunks = [_chunk(0, 0, 20, 0), _chunk(1, 20, 40, 10)]
    results = [
        _chunk_files(tmp_path, "v.mp4.chunk000", {1: (0, 1), 2: (100, 0)}, range(0, 20)),
        _chunk_files(tmp_path, "v.mp4.chunk001", {4: (0, 1), 5: (100, 0), 6: (60, 0)}, range(10, 40)),
    ]
    result = stitch_video(VideoRef("v.mp4", "v.mp4"), JobConfig(split_seconds=2.0), chunks, results, tmp_path, names={0: "circle"})
    assert result.outcome is VideoOutcome.SUCCEEDED, result.error
    rows = [line.split(",") for line in (tmp_path / "v.mp4.tracks.txt").read_text().splitlines()]
    assert len(rows[0]) == 10, "MOT rows, the chunk's class column dropped"
    frames = [int(r[0]) for r in rows]
    assert sorted(set(frames)) == list(range(1, 41)) and len(rows) == 20 * 2 + 20 * 3
    assert {r[1] for r in rows if int(r[0]) > 20} == {"1", "2", "3"}  # 4 -> 1, 5 -> 2, 6 new: 3
    detections = [json.loads(line)["frame"] for line in (tmp_path / "v.mp4.detections.jsonl").read_text().splitlines()]
    assert detections == list(range(1, 41))
    assert (result.frames, result.tracks, result.track_rows, result.detections) == (40, 3, 100, 40)
    assert [b.model_dump() for b in result.split.boundaries] == [
        {"chunk": 0, "matched": 0, "new": 2, "ended": 0}, {"chunk": 1, "matched": 2, "new": 1, "ended": 0}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4.detections.jsonl", "v.mp4.tracks.txt"], "chunk files removed"


@pytest.mark.parametrize("keep", [False, True])
def test_a_failed_chunk_fails_the_video_naming_chunk_and_time(tmp_path: Path, keep: bool) -> None:
    chunks = [_chunk(0, 0, 20, 0, count=3), _chunk(1, 20, 40, 10, count=3), _chunk(2, 40, 60, 30, count=3)]
    ok = [_chunk_files(tmp_path, f"v.mp4.chunk00{i}", {1: (0, 1)}, range(c.read_from, c.end)) for i, c in enumerate(chunks) if i != 1]
    failed = VideoResult(video="v.mp4", name="v.mp4.chunk001", outcome=VideoOutcome.FAILED, error_kind="video",
                         error="v.mp4: chunk 2/3 (00:00:02-00:00:04): decoding failed at 00:00:03 (frame 31): Invalid data")
    config = JobConfig(split_seconds=2.0, save_intermediate_results=keep)
    result = stitch_video(VideoRef("v.mp4", "v.mp4"), config, chunks, [ok[0], failed, ok[1]], tmp_path, names={})
    assert result.outcome is VideoOutcome.FAILED and result.error_kind == "video"
    assert result.error == failed.error  # the reader's line names the chunk and the time: not repeated
    assert not (tmp_path / "v.mp4.tracks.txt").exists()
    model_failed = failed.model_copy(update={"error": "model x.pt: not found", "error_kind": "model"})
    other = stitch_video(VideoRef("v.mp4", "v.mp4"), config.merged({"save_intermediate_results": True}), chunks, [ok[0], model_failed, ok[1]], tmp_path, names={})
    assert other.error == "chunk 2/3 (00:00:02-00:00:04): model x.pt: not found"
    kept = sorted(p.name for p in tmp_path.iterdir())
    if keep:
        assert kept == sorted(f"v.mp4.chunk00{i}{s}" for i in (0, 2) for s in (".detections.jsonl", ".tracks.txt"))
        assert result.split.chunks[0].outputs["tracks"] == "v.mp4.chunk000.tracks.txt"
    else:
        assert kept == []
