"""One video split into chunks and stitched, through `vidfleet process`, against the same video processed
whole and against the generator's ground truth (py-motmetrics): a 2-minute scene at 3 fps (360 frames, so
whole + split cost seconds on a CPU), in 4 chunks of 30 s with a 3 s overlap.

Measured (this test's print, seed 103): whole and split both MOTA 0.969 IDF1 0.847, 11 id switches, 1 of
them within 9 frames after a boundary in each; seed 102: whole 0.928/0.830, split 0.927/0.830. The
detections file is byte for byte the whole run's (the same decoded pixels, every frame once).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import motmetrics as mm
import numpy as np
import pytest

from tests.conftest import BUNDLED_MODEL
from tests.integration.test_accuracy import TRACKER, iou_distance, score
from vidfleet_detector.synthetic import MIN_VISIBILITY, generate_video, load_ground_truth

pytestmark = pytest.mark.slow

SEED = 103
FPS, FRAMES = 3.0, 360
SPLIT = {"split_seconds": 30.0, "split_overlap_seconds": 3.0}
COUNTING = {
    "lines": [{"name": "gate", "points": [[320, 0], [320, 480]]}],
    "zones": [{"name": "dock", "polygon": [[0, 0], [320, 0], [320, 240], [0, 240]]}],
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    return generate_video(tmp_path_factory.mktemp("split") / "long.mp4", seed=SEED, frames=FRAMES, objects=6, fps=FPS)


def _process(vidfleet_cli: list[str], video: Path, folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps({**TRACKER, **config, "model": BUNDLED_MODEL, "imgsz": 320}))
    done = subprocess.run([*vidfleet_cli, "process", str(video), "--config", str(folder / "job.json"), "--out", str(folder / "out"), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return folder / "out"


@pytest.fixture(scope="module")
def runs(vidfleet_cli: list[str], scene, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {label: _process(vidfleet_cli, scene.video, tmp_path_factory.mktemp(label), {**COUNTING, **extra, "visualize": True})
            for label, extra in (("whole", {}), ("split", SPLIT))}


def _boundary_switches(tracks: Path, gt: Path, boundaries: list[int], window: int) -> int:
    """Id switches within `window` frames after a chunk boundary (frame numbers from 1)."""
    everything = load_ground_truth(gt)
    hyp: dict[int, list[tuple[int, list[float]]]] = {}
    for line in tracks.read_text().splitlines():
        f, tid, x, y, w, h = line.split(",")[:6]
        hyp.setdefault(int(f), []).append((int(tid), [float(x), float(y), float(w), float(h)]))
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in range(1, FRAMES + 1):
        kept = [o for o in everything.get(frame, []) if o.visibility >= MIN_VISIBILITY]
        rows = hyp.get(frame, [])
        distances = iou_distance(np.array([[o.x, o.y, o.w, o.h] for o in kept]).reshape(-1, 4),
                                 np.array([b for _, b in rows]).reshape(-1, 4), max_iou=0.5)
        acc.update([o.id for o in kept], [t for t, _ in rows], distances, frameid=frame)
    switches = acc.mot_events[acc.mot_events["Type"] == "SWITCH"].index.get_level_values("FrameId")
    return sum(1 for f in switches if any(b < f <= b + window for b in boundaries))


def test_split_scores_like_whole_on_ground_truth(runs: dict[str, Path], scene) -> None:
    frames = list(range(1, FRAMES + 1))
    whole = score(runs["whole"] / "long.tracks.txt", scene.ground_truth, frames)
    split = score(runs["split"] / "long.tracks.txt", scene.ground_truth, frames)
    result = json.loads((runs["split"] / "result.json").read_text())["videos"][0]
    boundaries = [round(c["start_s"] * FPS) for c in result["split"]["chunks"][1:]]
    window = round(SPLIT["split_overlap_seconds"] * FPS)
    at_boundaries = {label: _boundary_switches(runs[label] / "long.tracks.txt", scene.ground_truth, boundaries, window) for label in runs}
    print(f"whole: {whole}\nsplit: {split}\nid switches within {window} frames after a boundary: {at_boundaries}")
    print("stitching:", result["split"]["boundaries"])
    assert len(result["split"]["chunks"]) == 4
    assert abs(split["mota"] - whole["mota"]) <= 0.01, (whole, split)
    assert abs(split["idf1"] - whole["idf1"]) <= 0.01, (whole, split)
    assert at_boundaries["split"] <= at_boundaries["whole"] + len(boundaries)  # at most one stitching error per boundary
    assert sum(b["matched"] for b in result["split"]["boundaries"]) > 0


def test_split_writes_the_files_of_a_whole_run_every_frame_once(runs: dict[str, Path]) -> None:
    whole, split = (json.loads((runs[k] / "result.json").read_text())["videos"][0] for k in ("whole", "split"))
    assert split["outcome"] == "succeeded" and split["frames"] == whole["frames"] == FRAMES
    assert split["outputs"] == whole["outputs"]
    assert sorted(p.name for p in runs["split"].iterdir()) == sorted(p.name for p in runs["whole"].iterdir())  # no chunk file left
    # Same frames decoded, each by one chunk: the detections are the whole run's, byte for byte.
    assert (runs["split"] / "long.detections.jsonl").read_bytes() == (runs["whole"] / "long.detections.jsonl").read_bytes()
    rows = [line.split(",")[:2] for line in (runs["split"] / "long.tracks.txt").read_text().splitlines()]
    assert len(rows) == len({tuple(r) for r in rows}), "a (frame, id) row written twice"
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows) and 1 <= int(rows[0][0]) and int(rows[-1][0]) <= FRAMES
    assert abs(split["track_rows"] - whole["track_rows"]) <= 0.02 * whole["track_rows"]
    # Counting: the events, replayed into counts, agree with the whole run's to within a stitching error per boundary.
    for line in ("gate",):
        for direction, n in whole["counts"]["lines"][line]["crossings"].items():
            assert abs(split["counts"]["lines"][line]["crossings"][direction] - n) <= 3, (whole["counts"], split["counts"])
    assert abs(split["counts"]["zones"]["dock"]["entries"] - whole["counts"]["zones"]["dock"]["entries"]) <= 3
    events = [json.loads(e) for e in (runs["split"] / "long.events.jsonl").read_text().splitlines()]
    assert sum(e["kind"] == "enter" for e in events) == split["counts"]["zones"]["dock"]["entries"]
    # The annotated video: one frame per processed frame, like the whole run's.
    import cv2

    lengths = []
    for label in ("whole", "split"):
        capture = cv2.VideoCapture(str(runs[label] / "long.annotated.mp4"))
        lengths.append(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        capture.release()
    assert lengths == [FRAMES, FRAMES]


def test_split_with_skip_frames_processes_the_same_frames(vidfleet_cli: list[str], scene, tmp_path: Path) -> None:
    """With skip_frames 2 every chunk processes the video's even-indexed frames (numbers 1, 3, ...), whatever
    its start: the same frames as the whole run, each once."""
    out = {label: _process(vidfleet_cli, scene.video, tmp_path / label, {**extra, "skip_frames": 2}) for label, extra in (("whole", {}), ("split", SPLIT))}
    assert (out["split"] / "long.detections.jsonl").read_bytes() == (out["whole"] / "long.detections.jsonl").read_bytes()
    frames = {int(line.split(",")[0]) for line in (out["split"] / "long.tracks.txt").read_text().splitlines()}
    assert frames and all(f % 2 == 1 for f in frames)
    processed = list(range(1, FRAMES + 1, 2))
    whole, split = (score(out[k] / "long.tracks.txt", scene.ground_truth, processed) for k in ("whole", "split"))
    print(f"skip_frames 2: whole {whole}\nsplit {split}")
    assert abs(split["mota"] - whole["mota"]) <= 0.01 and abs(split["idf1"] - whole["idf1"]) <= 0.01, (whole, split)
