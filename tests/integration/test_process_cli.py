"""`vidfleet process` end to end, as a user runs it: a real subprocess, real videos, the bundled model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import pytest

from tests.conftest import BUNDLED_MODEL
from tests.videos import bad_inputs

pytestmark = pytest.mark.slow


def run_process(cli: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli, "process", *args, "--quiet"], capture_output=True, text=True, timeout=600)


def read_mot(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split(",")] for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def processed(vidfleet_cli: list[str], video_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("out")
    done = run_process(vidfleet_cli, str(video_dir), "--out", str(out), "--model", BUNDLED_MODEL, "--visualize")
    return out, done


def test_a_folder_succeeds_with_exit_status_0_and_a_summary(processed: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = processed
    assert done.returncode == 0, done.stderr
    assert "all 2 videos succeeded" in done.stdout and str(out.resolve()) in done.stdout
    assert "error:" not in done.stderr


def test_every_output_is_written_and_consistent(processed: tuple[Path, subprocess.CompletedProcess[str]], video_dir: Path) -> None:
    out, _ = processed
    result = json.loads((out / "result.json").read_text())
    assert result["success"] is True and result["state"] == "succeeded"
    assert {"torch", "ultralytics", "opencv", "python", "vidfleet-detector"} <= set(result["versions"])
    assert result["config"]["model"] == BUNDLED_MODEL and result["config"]["visualize"] is True
    for video in result["videos"]:
        name = video["name"]
        source = cv2.VideoCapture(str(video_dir / f"{name}.mp4"))
        total = int(source.get(cv2.CAP_PROP_FRAME_COUNT))
        assert video["frames"] == video["frames_processed"] == total
        assert video["detections"] > 0 and video["tracks"] > 0

        rows = read_mot(out / f"{name}.tracks.txt")
        assert len(rows) == video["track_rows"] > 0
        assert all(len(r) == 10 and 1 <= r[0] <= total and r[1] >= 1 and r[4] > 0 and r[5] > 0 for r in rows)
        assert all(r[7:] == [-1, -1, -1] for r in rows)
        assert len({r[1] for r in rows}) == video["tracks"]

        detections = [json.loads(line) for line in (out / f"{name}.detections.jsonl").read_text().splitlines()]
        assert len(detections) == video["detections"]
        assert {d["class_name"] for d in detections} <= {"circle", "square", "triangle"}

        annotated = cv2.VideoCapture(str(out / f"{name}.annotated.mp4"))
        assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == total
        assert (annotated.get(cv2.CAP_PROP_FRAME_WIDTH), annotated.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 480)
    assert not list(out.rglob(".tmp-*")), "no temporary file is left behind"


def test_each_bad_input_fails_alone_with_one_line(vidfleet_cli: list[str], video_dir: Path, tmp_path: Path) -> None:
    bad = bad_inputs(tmp_path / "bad")
    good = str(video_dir / "short_a.mp4")
    out = tmp_path / "out"
    done = run_process(vidfleet_cli, good, *bad, "--out", str(out), "--model", BUNDLED_MODEL)

    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad), done.stderr
    for source, fragment in bad.items():
        assert any(source in line and fragment in line for line in errors), (source, fragment, errors)
    assert "Traceback" not in done.stderr

    result = json.loads((out / "result.json").read_text())
    assert result["state"] == "partial" and result["success"] is False
    by_source = {v["video"]: v for v in result["videos"]}
    assert by_source[good]["outcome"] == "succeeded" and by_source[good]["track_rows"] > 0
    for source, fragment in bad.items():
        assert by_source[source]["outcome"] == "failed" and fragment in by_source[source]["error"]
        assert by_source[source]["error_kind"]
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "short_a.detections.jsonl", "short_a.tracks.txt"]


@pytest.mark.parametrize(
    ("config", "flags", "fragment"),
    [
        ({"iou_treshold": 0.3}, [], "unknown config key 'iou_treshold'"),
        ({"iou_threshold": "high"}, [], "config key 'iou_threshold': expected a number, got 'high'"),
        ({"max_age": -1}, [], "config key 'max_age': input should be greater than or equal to 0, got -1 (int)"),
        (None, ["--max-age", "-1"], "config key 'max_age'"),
        (None, ["--imgsz", "100"], "imgsz must be a multiple of 32"),
    ],
)
def test_a_bad_config_is_one_line_and_exit_2(
    vidfleet_cli: list[str], video_dir: Path, tmp_path: Path, config: dict | None, flags: list[str], fragment: str
) -> None:
    args = [str(video_dir), "--out", str(tmp_path / "out"), *flags]
    if config is not None:
        (tmp_path / "job.json").write_text(json.dumps(config))
        args += ["--config", str(tmp_path / "job.json")]
    done = run_process(vidfleet_cli, *args)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and fragment in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_model_fails_every_video_with_its_reason(vidfleet_cli: list[str], video_dir: Path, tmp_path: Path) -> None:
    done = run_process(vidfleet_cli, str(video_dir), "--out", str(tmp_path / "out"), "--model", str(tmp_path / "nope.pt"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("nope.pt" in line and "no such file" in line for line in errors)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["state"] == "failed" and {v["error_kind"] for v in result["videos"]} == {"model"}
