"""MOT text helpers: reading det.txt, writing rows atomically, track_mot_file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidfleet_detector.tracking import (
    MotFormatError,
    format_mot_row,
    iter_mot_frames,
    read_mot_detections,
    track_mot_file,
    write_mot_rows,
)

GOOD_ROW = "1,-1,100,100,40,80,0.9,-1,-1,-1"


def _write(tmp_path: Path, text: str, name: str = "det.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_groups_by_frame_and_converts_to_corners(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "2,-1,10.5,20,30,40,0.9,-1,-1,-1\n"
        "2,-1,100,100,10,20,0.5,-1,-1,-1\n"
        "\n"
        "5,-1,1,2,3,4,0.25\n",
    )
    dets = read_mot_detections(path)
    assert sorted(dets) == [2, 5]
    np.testing.assert_array_equal(dets[2], [[10.5, 20, 40.5, 60, 0.9], [100, 100, 110, 120, 0.5]])
    np.testing.assert_array_equal(dets[5], [[1, 2, 4, 6, 0.25]])
    assert dets[2].dtype == np.float64


def test_iter_frames_includes_empty_frames(tmp_path: Path) -> None:
    dets = read_mot_detections(_write(tmp_path, "2,-1,0,0,1,1,1\n5,-1,0,0,1,1,1\n"))
    frames = list(iter_mot_frames(dets))
    assert [f for f, _ in frames] == [1, 2, 3, 4, 5]
    assert [len(d) for _, d in frames] == [0, 1, 0, 0, 1]
    assert all(d.shape[1] == 5 for _, d in frames)
    assert [f for f, _ in iter_mot_frames(dets, last_frame=7)] == list(range(1, 8))
    assert list(iter_mot_frames({})) == []


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        pytest.param(f"{GOOD_ROW}\n1,-1,100,100,40\n", 2, "at least 7", id="too-few-columns"),
        pytest.param(f"{GOOD_ROW}\n1,-1,abc,100,40,80,0.9\n", 2, "column 3", id="not-a-number"),
        pytest.param("0,-1,100,100,40,80,0.9\n", 1, "frame", id="frame-0"),
        pytest.param("1.5,-1,100,100,40,80,0.9\n", 1, "frame", id="fractional-frame"),
        pytest.param(f"{GOOD_ROW}\n\n1,-1,nan,100,40,80,0.9\n", 3, "finite", id="nan-after-blank-line"),
        pytest.param("1,-1,100,100,0,80,0.9\n", 1, "width", id="zero-width"),
        pytest.param("1,-1,100,100,40,-80,0.9\n", 1, "height", id="negative-height"),
        pytest.param("1 -1 100 100 40 80 0.9\n", 1, "comma", id="space-separated"),
    ],
)
def test_malformed_det_file(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(MotFormatError) as info:
        read_mot_detections(path)
    message = str(info.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert problem in message
    assert info.value.line_number == line
    assert isinstance(info.value, ValueError)


def test_non_utf8_det_file(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_bytes(GOOD_ROW.encode() + b"\n1,-1,\xff\n")
    with pytest.raises(MotFormatError, match="line 2"):
        read_mot_detections(path)


def test_missing_det_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "det.txt"
    with pytest.raises(FileNotFoundError, match="not found") as info:
        read_mot_detections(path)
    assert str(path) in str(info.value)
    with pytest.raises(FileNotFoundError):
        track_mot_file(path, tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


def test_format_mot_row() -> None:
    row = np.array([10.0, 20.0, 50.5, 100.25, 3.0, 0.9, -1.0])
    assert format_mot_row(7, row) == "7,3,10.00,20.00,40.50,80.25,1,-1,-1,-1"


def test_write_mot_rows_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    assert write_mot_rows(out, ["a", "b"]) == 2
    assert out.read_text() == "a\nb\n"

    def failing():
        yield "c"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_mot_rows(out, failing())
    assert out.read_text() == "a\nb\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temp file left


def test_track_mot_file_small_sequence(tmp_path: Path) -> None:
    # One object in frames 2-6 (none in frames 1 and 4), a second only in frame 6.
    rows = [f"{f},-1,100,100,40,80,0.9,-1,-1,-1" for f in (2, 3, 5, 6)] + ["6,-1,400,50,50,100,0.8,-1,-1,-1"]
    det = _write(tmp_path, "\n".join(rows) + "\n")
    out = tmp_path / "tracks.txt"
    written = track_mot_file(det, out)
    lines = out.read_text().splitlines()
    assert written == len(lines)
    # frames 2, 3 reported (frame_count <= min_hits); frame 4 missed; frames 5, 6 streak 1, 2 -> hidden
    assert lines == ["2,1,100.00,100.00,40.00,80.00,1,-1,-1,-1", "3,1,100.00,100.00,40.00,80.00,1,-1,-1,-1"]
    assert track_mot_file(det, out, min_hits=0) == 5


def test_track_mot_file_empty_input(tmp_path: Path) -> None:
    out = tmp_path / "tracks.txt"
    assert track_mot_file(_write(tmp_path, ""), out) == 0
    assert out.read_text() == ""


def test_track_mot_file_validates_params_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="iou_threshold"):
        track_mot_file(tmp_path / "missing.txt", tmp_path / "out.txt", iou_threshold=2)
