"""Generated test videos: MP4 that OpenCV decodes, MOT ground truth next to it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidfleet_detector.synthetic import MIN_VISIBILITY, Scene, generate_video, gt_path_for, load_ground_truth


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):
    return generate_video(tmp_path_factory.mktemp("video") / "clip.mp4", seed=7, frames=30, objects=6)


def test_video_decodes_to_the_right_frame_count_and_size(clip) -> None:
    capture = cv2.VideoCapture(str(clip.video))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0)
    count = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        assert image.shape == (480, 640, 3)
        count += 1
    capture.release()
    assert count == 30 == clip.frames


def test_decoded_frames_look_like_the_rendered_ones(clip) -> None:
    rendered = Scene(7, objects=6).render().image.astype(np.float64)
    capture = cv2.VideoCapture(str(clip.video))
    ok, decoded = capture.read()
    capture.release()
    assert ok
    assert np.abs(decoded.astype(np.float64) - rendered).mean() < 6.0


def test_ground_truth_file_format(clip) -> None:
    assert clip.ground_truth == gt_path_for(clip.video) == clip.video.with_name("clip.gt.txt")
    lines = clip.ground_truth.read_text().splitlines()
    assert lines
    frames = set()
    for line in lines:
        fields = line.split(",")
        assert len(fields) == 9
        frame, obj_id, x, y, w, h, conf, cls, vis = fields
        frames.add(int(frame))
        assert int(obj_id) >= 1 and conf == "1" and cls in ("0", "1", "2")
        assert 0 <= float(x) and 0 <= float(y) and float(x) + float(w) <= 640 and float(y) + float(h) <= 480
        assert 0.0 <= float(vis) <= 1.0
    assert min(frames) == 1 and max(frames) <= 30


def test_ground_truth_matches_the_scene(clip) -> None:
    truth = load_ground_truth(clip.ground_truth)
    for index, frame in enumerate(Scene(7, objects=6).frames(30), start=1):
        loaded = truth.get(index, [])
        assert [(o.id, o.class_id, o.x, o.y, o.w, o.h) for o in loaded] == [
            (o.id, o.class_id, o.x, o.y, o.w, o.h) for o in frame.objects
        ]
        assert [o.visibility for o in loaded] == pytest.approx([o.visibility for o in frame.objects], abs=1e-4)


def test_load_ground_truth_filters_on_visibility_and_accepts_the_video_path(clip) -> None:
    everything = load_ground_truth(clip.video)
    kept = load_ground_truth(clip.ground_truth, min_visibility=MIN_VISIBILITY)
    assert sum(map(len, kept.values())) <= sum(map(len, everything.values()))
    assert all(o.visibility >= MIN_VISIBILITY for objs in kept.values() for o in objs)


def test_same_seed_same_ground_truth(tmp_path: Path, clip) -> None:
    again = generate_video(tmp_path / "again.mp4", seed=7, frames=30, objects=6)
    assert again.ground_truth.read_text() == clip.ground_truth.read_text()
    other = generate_video(tmp_path / "other.mp4", seed=8, frames=30, objects=6)
    assert other.ground_truth.read_text() != clip.ground_truth.read_text()


def test_ids_are_counted(clip) -> None:
    ids = {o.id for objs in load_ground_truth(clip.ground_truth).values() for o in objs}
    assert clip.ids == len(ids) >= 6


def test_rejects_zero_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_video(tmp_path / "none.mp4", seed=1, frames=0)
    assert not (tmp_path / "none.mp4").exists()


def test_malformed_ground_truth_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gt.txt"
    bad.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="line 1"):
        load_ground_truth(bad)
