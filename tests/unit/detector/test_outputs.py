from pathlib import Path

import cv2
import numpy as np
import pytest

from vidfleet_common.staging import remove_temp_files
from vidfleet_detector.outputs import TRACKS_SUFFIX, AnnotatedWriter, DetectionsWriter, StagedFile, TracksWriter


def test_staged_file_appears_only_on_commit(tmp_path: Path) -> None:
    staged = StagedFile(tmp_path, "v", ".tracks.txt")
    staged.temp.write_text("1,1,0,0,1,1,1,-1,-1,-1\n")
    assert not staged.final.exists()
    staged.commit()
    assert staged.final.read_text().startswith("1,1") and not staged.temp.exists()


@pytest.mark.parametrize(("keep", "left"), [(False, []), (True, ["my.clip.partial.tracks.txt"])])
def test_discard_removes_or_keeps_a_partial(tmp_path: Path, keep: bool, left: list[str]) -> None:
    staged = StagedFile(tmp_path, "my.clip", ".tracks.txt")
    staged.temp.write_text("partial")
    staged.discard(keep_partial=keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == left


def test_tracks_are_mot_rows(tmp_path: Path) -> None:
    writer = TracksWriter(StagedFile(tmp_path, "v", ".tracks.txt"))
    writer.write(3, np.array([[10.0, 20.0, 40.0, 60.0, 7, 0.9, 1]]))
    writer.write(4, np.empty((0, 7)))
    writer.close()
    assert writer.staged.temp.read_text() == "3,7,10.00,20.00,30.00,40.00,0.9000,-1,-1,-1\n"
    assert (writer.rows, writer.ids) == (1, {7})


def test_detections_never_buffer_more_than_the_limit(tmp_path: Path) -> None:
    writer = DetectionsWriter(StagedFile(tmp_path, "v", ".detections.jsonl"), {0: "circle"}, max_in_memory=5)
    peak = 0
    for frame in range(1, 21):
        writer.write(frame, np.array([[1, 2, 3, 4], [5, 6, 7, 8]], float), np.array([0.5, 0.6]), np.array([0, 3]))
        peak = max(peak, writer.buffered)
        assert writer.buffered < 5
    writer.close()
    lines = writer.staged.temp.read_text().splitlines()
    assert len(lines) == writer.count == 40 and peak > 0
    assert lines[0] == '{"frame":1,"class_id":0,"class_name":"circle","conf":0.5,"box":[1.0,2.0,3.0,4.0]}'
    assert '"class_name":"3"' in lines[1]


def test_annotated_writer_makes_a_playable_mp4(tmp_path: Path) -> None:
    writer = AnnotatedWriter(StagedFile(tmp_path, "v", ".annotated.mp4"), fps=10, width=64, height=48)
    for _ in range(5):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.close()
    writer.staged.commit()
    capture = cv2.VideoCapture(str(tmp_path / "v.annotated.mp4"))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_a_dead_writers_files_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = StagedFile(tmp_path, "cam1/day2", TRACKS_SUFFIX, owner="deadbeef0001")
    alive = StagedFile(tmp_path, "cam1/day3", TRACKS_SUFFIX, owner="a11ve0000002")
    for staged in (dead, alive):
        staged.temp.write_text("1,1,0,0,1,1,0.9,-1,-1,-1\n")
    assert dead.temp.parent == tmp_path / "cam1" and dead.temp.name.startswith(".tmp-deadbeef0001-")
    assert dead.temp.name.endswith("-day2.tracks.txt"), "the final suffix is kept"

    assert remove_temp_files(tmp_path, "deadbeef0001") == [dead.temp]
    assert alive.temp.exists() and not dead.temp.exists()
    assert remove_temp_files(tmp_path) == [alive.temp], "at the end of a job, everything left"
