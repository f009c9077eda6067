"""Counting lines and zones through `vidfleet process`: the events file, the counts in result.json, the
annotated video, and the config errors that only the video or the model can reveal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import BUNDLED_MODEL

pytestmark = pytest.mark.slow

# The example, with the bundled model's class names (it knows circle, square and triangle).
CONFIG = {
    "model": BUNDLED_MODEL, "min_hits": 2, "max_age": 3,
    "lines": [{"name": "gate", "points": [[320, 0], [320, 480]], "classes": ["circle", "square", "triangle"]}],
    "zones": [{"name": "dock", "polygon": [[0, 0], [200, 0], [200, 200], [0, 200]]}, {"name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
}
EVENT_KEYS = {"frame", "time", "track_id", "class_name", "kind", "point"}


def run(vidfleet_cli: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*vidfleet_cli, "process", *args, "--quiet"], capture_output=True, text=True, timeout=600)


def config_file(folder: Path, config: dict) -> str:
    path = folder / "job.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def counted(vidfleet_cli: list[str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from vidfleet_detector.synthetic import generate_video

    inputs, out = tmp_path_factory.mktemp("count-in"), tmp_path_factory.mktemp("count-out")
    generate_video(inputs / "a.mp4", seed=510, frames=120, objects=4)
    generate_video(inputs / "b.mp4", seed=511, frames=90, objects=4)
    done = run(vidfleet_cli, str(inputs), "--out", str(out), "--config", config_file(inputs, CONFIG), "--visualize")
    assert done.returncode == 0, done.stderr
    return inputs, out


def test_every_video_has_its_events_file_with_the_documented_keys(counted: tuple[Path, Path]) -> None:
    _, out = counted
    result = json.loads((out / "result.json").read_text())
    for video in result["videos"]:
        assert video["outputs"]["events"] == f"{video['name']}.events.jsonl"
        events = [json.loads(line) for line in (out / video["outputs"]["events"]).read_text().splitlines()]
        assert events, video["name"]
        frames = [e["frame"] for e in events]
        assert frames == sorted(frames) and 1 <= frames[0] and frames[-1] <= video["frames"]
        for e in events:
            assert EVENT_KEYS <= e.keys() or e["reason"] in ("lost", "end"), e
            assert e["kind"] in ("cross", "enter", "exit") and ("line" in e) != ("zone" in e)
            assert e["time"] == pytest.approx((e["frame"] - 1) / video["video_fps"], abs=1e-3)
            if e["kind"] == "cross":
                assert e["direction"] in ("in", "out") and e["line"] == "gate"
            if e["kind"] == "exit":
                assert e["dwell"] >= 0 and e["reason"] in ("left", "lost", "end")
        # The zone the size of the frame: every track enters it, and every visit ends by the end of the video.
        tracks = {int(r.split(",")[1]) for r in (out / f"{video['name']}.tracks.txt").read_text().splitlines()}
        assert {e["track_id"] for e in events if e.get("zone") == "all" and e["kind"] == "enter"} <= tracks
        assert video["counts"]["zones"]["all"]["entries"] >= len(tracks) - 2
        assert video["counts"]["zones"]["all"]["exits"] == video["counts"]["zones"]["all"]["entries"]


def test_result_json_counts_per_video_and_their_sum_for_the_job(counted: tuple[Path, Path]) -> None:
    _, out = counted
    result = json.loads((out / "result.json").read_text())
    a, b = (v["counts"] for v in result["videos"])
    job = result["counts"]
    assert job["lines"]["gate"]["crossings"] == {d: a["lines"]["gate"]["crossings"][d] + b["lines"]["gate"]["crossings"][d] for d in ("in", "out")}
    assert job["zones"]["all"]["entries"] == a["zones"]["all"]["entries"] + b["zones"]["all"]["entries"]
    assert job["zones"]["all"]["max_inside"] == max(a["zones"]["all"]["max_inside"], b["zones"]["all"]["max_inside"])
    assert sum(job["lines"]["gate"]["crossings"].values()) > 0, "the run should cross the gate"


def test_the_annotated_video_draws_the_line_the_zones_and_their_counts(counted: tuple[Path, Path], vidfleet_cli: list[str], tmp_path: Path) -> None:
    inputs, out = counted
    plain = tmp_path / "plain"
    done = run(vidfleet_cli, str(inputs / "a.mp4"), "--out", str(plain), "--model", BUNDLED_MODEL, "--visualize")
    assert done.returncode == 0, done.stderr

    def frame(path: Path, index: int) -> np.ndarray:
        capture = cv2.VideoCapture(str(path))
        for _ in range(index + 1):
            ok, image = capture.read()
        assert ok
        return image.astype(int)

    with_counting, without = frame(out / "a.annotated.mp4", 60), frame(plain / "a.annotated.mp4", 60)
    # The gate x = 320 is drawn amber (BGR 0, 215, 255) from top to bottom.
    column = with_counting[:, 318:323]
    amber = (np.abs(column - np.array([0, 215, 255])).sum(axis=2) < 90).any(axis=1)
    assert amber.mean() > 0.8
    assert not (np.abs(without[:, 318:323] - np.array([0, 215, 255])).sum(axis=2) < 90).any(axis=1).mean() > 0.3
    # The dock (0..200) is tinted: its pixels differ from the plain video's, those far from every drawing do not.
    assert np.abs(with_counting[100:180, 20:180] - without[100:180, 20:180]).mean() > 5


def test_a_class_the_model_does_not_know_is_one_line_and_exit_2(vidfleet_cli: list[str], counted: tuple[Path, Path], tmp_path: Path) -> None:
    inputs, _ = counted
    bad = {**CONFIG, "lines": [{"name": "gate", "points": [[320, 0], [320, 480]], "classes": ["car"]}]}
    done = run(vidfleet_cli, str(inputs / "a.mp4"), "--out", str(tmp_path / "out"), "--config", config_file(tmp_path, bad))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "Error: config key 'lines.0.classes': unknown class 'car' (model vidfleet-shapes-n.pt has circle, square, triangle)"
    ), done.stderr
    assert not (tmp_path / "out").exists()


def test_pixels_outside_a_video_fail_that_video_alone_naming_the_key(vidfleet_cli: list[str], counted: tuple[Path, Path], tmp_path: Path) -> None:
    from vidfleet_detector.synthetic import generate_video

    inputs, _ = counted
    small = generate_video(tmp_path / "small.mp4", seed=512, frames=20, width=320, height=240, objects=2).video
    out = tmp_path / "out"
    done = run(vidfleet_cli, str(inputs / "a.mp4"), str(small), "--out", str(out), "--config", config_file(tmp_path, CONFIG))
    assert done.returncode == 1
    assert "error: small: config key 'lines.0.points': point [320, 480] is outside the 320x240 frame" in done.stderr, done.stderr
    result = json.loads((out / "result.json").read_text())
    by_name = {v["name"]: v for v in result["videos"]}
    assert by_name["small"]["outcome"] == "failed" and by_name["small"]["error_kind"] == "config"
    assert by_name["a"]["outcome"] == "succeeded" and result["state"] == "partial"
    assert not list(out.glob("small.*")), "the failed video leaves no file"
    # In fractions of the frame, the same definitions fit both sizes.
    fractions = {**CONFIG, "lines": [{"name": "gate", "points": [[0.5, 0], [0.5, 1]]}], "zones": [{"name": "dock", "polygon": [[0, 0], [0.3125, 0], [0.3125, 0.4167], [0, 0.4167]]}]}
    done = run(vidfleet_cli, str(small), "--out", str(tmp_path / "fractions"), "--config", config_file(tmp_path, fractions))
    assert done.returncode == 0, done.stderr
