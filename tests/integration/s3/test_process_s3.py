"""`vidfleet process` with s3:// inputs and outputs against a real S3-compatible server (SeaweedFS)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_MODEL
from tests.s3 import LIMITED_BUCKET, LIMITED_KEY, LIMITED_SECRET, WeedServer
from tests.videos import write_video

pytestmark = pytest.mark.slow


def run_process(cli: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("VIDFLEET_", "AWS_"))} | env
    return subprocess.run([*cli, "process", *args, "--quiet", "--model", BUNDLED_MODEL], capture_output=True, text=True, timeout=600, env=full)


@pytest.fixture(scope="module")
def inputs(s3_server: WeedServer, video_dir: Path) -> str:
    """A bucket with the two short videos, one of them under a sub-prefix, beside a non-video object."""
    bucket = s3_server.bucket("in")
    client = s3_server.client()
    client.upload_file(str(video_dir / "short_a.mp4"), bucket, "cams/short_a.mp4")
    client.upload_file(str(video_dir / "short_b.mp4"), bucket, "cams/north/short_b.mp4")
    client.put_object(Bucket=bucket, Key="cams/README.txt", Body=b"not a video, not listed")
    return bucket


def test_a_prefix_is_processed_bucket_to_bucket_with_sub_paths_kept(
    vidfleet_cli: list[str], s3_server: WeedServer, inputs: str, video_dir: Path, tmp_path: Path
) -> None:
    out_bucket = s3_server.bucket("out")
    done = run_process(vidfleet_cli, s3_server.env(), f"s3://{inputs}/cams/", "--out", f"s3://{out_bucket}/results/run1", "--visualize")
    assert done.returncode == 0, done.stderr
    assert f"s3://{out_bucket}/results/run1/result.json" in done.stdout

    keys = s3_server.keys(out_bucket)
    stems = ("short_a", "north/short_b")
    expected = {f"results/run1/{s}{suffix}" for s in stems for suffix in (".tracks.txt", ".detections.jsonl", ".annotated.mp4")}
    assert set(keys) == expected | {"results/run1/result.json"}, keys
    result = json.loads(s3_server.read(out_bucket, "results/run1/result.json"))
    assert result["state"] == "succeeded" and [v["name"] for v in result["videos"]] == ["north/short_b", "short_a"]
    assert {v["video"] for v in result["videos"]} == {f"s3://{inputs}/cams/short_a.mp4", f"s3://{inputs}/cams/north/short_b.mp4"}

    # An object mixed with a local file, to a local folder: the same video from local disk gives the same
    # tracks as from the bucket (the object is decoded whole, frame for frame).
    mixed = run_process(vidfleet_cli, s3_server.env(), f"s3://{inputs}/cams/north/short_b.mp4", str(video_dir / "short_a.mp4"), "--out", str(tmp_path))
    assert mixed.returncode == 0, mixed.stderr
    assert s3_server.read(out_bucket, "results/run1/short_a.tracks.txt") == (tmp_path / "short_a.tracks.txt").read_bytes()
    assert s3_server.read(out_bucket, "results/run1/north/short_b.tracks.txt") == (tmp_path / "short_b.tracks.txt").read_bytes()
    for video in result["videos"]:
        assert video["frames"] == video["total_frames"] > 0 and video["tracks"] > 0
    secret = s3_server.env()["AWS_SECRET_ACCESS_KEY"]
    assert secret not in done.stdout + done.stderr and "Signature" not in json.dumps(result)


def test_each_bad_s3_input_fails_alone_with_one_line(
    vidfleet_cli: list[str], s3_server: WeedServer, inputs: str, video_dir: Path, tmp_path: Path
) -> None:
    bucket = s3_server.bucket("bad")
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="notes.mp4", Body=b"this is not a video\n")
    client.put_object(Bucket=bucket, Key="empty.mp4", Body=b"")
    good = write_video(tmp_path / "whole.mp4", 20).read_bytes()
    client.put_object(Bucket=bucket, Key="truncated.mp4", Body=good[: len(good) // 2])
    client.put_object(Bucket=bucket, Key="docs/readme.txt", Body=b"no videos here")
    bad = {
        "s3://no-such-bucket-vf/videos/": "bucket does not exist",
        f"s3://{bucket}/missing.mp4": "no such object",
        f"s3://{bucket}/docs/": "no video objects",
        f"s3://{bucket}/notes.mp4": "not a readable video",
        f"s3://{bucket}/empty.mp4": "object is empty (0 bytes)",
        f"s3://{bucket}/truncated.mp4": "not a readable video",
    }
    done = run_process(vidfleet_cli, s3_server.env(), f"s3://{inputs}/cams/short_a.mp4", *bad, "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad), done.stderr
    for source, fragment in bad.items():
        assert any(source.rstrip("/") in line and fragment in line for line in errors), (source, fragment, errors)
    assert "Traceback" not in done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["state"] == "partial" and sum(v["outcome"] == "succeeded" for v in result["videos"]) == 1


def test_access_denied_and_wrong_credentials_are_one_line_each(
    vidfleet_cli: list[str], s3_server: WeedServer, inputs: str, tmp_path: Path
) -> None:
    limited = s3_server.env(LIMITED_KEY, LIMITED_SECRET)
    denied = run_process(vidfleet_cli, limited, f"s3://{inputs}/cams/", f"s3://{inputs}/cams/short_a.mp4", "--out", str(tmp_path / "a"))
    wrong = s3_server.env(LIMITED_KEY, "not-the-secret")
    refused = run_process(vidfleet_cli, wrong, f"s3://{LIMITED_BUCKET}/x.mp4", "--out", str(tmp_path / "b"))
    assert denied.returncode == refused.returncode == 1
    denied_lines = [line for line in denied.stderr.splitlines() if line.startswith("error:")]
    assert len(denied_lines) == 2 and all("access denied" in line for line in denied_lines), denied.stderr
    assert "wrong credentials" in refused.stderr and "not-the-secret" not in refused.stderr + refused.stdout
    assert "Traceback" not in denied.stderr + refused.stderr


def test_an_output_bucket_that_refuses_writes_fails_each_video_clearly(
    vidfleet_cli: list[str], s3_server: WeedServer, inputs: str, video_dir: Path
) -> None:
    limited = s3_server.env(LIMITED_KEY, LIMITED_SECRET)
    done = run_process(vidfleet_cli, limited, str(video_dir / "short_a.mp4"), "--out", f"s3://{LIMITED_BUCKET}/out/")
    assert done.returncode == 2, done.stderr  # not even result.json can be saved: one line, no traceback
    assert "error: short_a: " in done.stderr and "processed, but cannot save" in done.stderr and "access denied" in done.stderr
    assert "result.json not written" in done.stderr and "Traceback" not in done.stderr


def test_an_output_outside_the_output_buckets_is_refused_before_any_video(vidfleet_cli: list[str], s3_server: WeedServer, inputs: str) -> None:
    # (Inputs outside VIDFLEET_INPUT_BUCKETS: tests/unit/common/test_buckets.py, and 403 on the fleet.)
    env = s3_server.env() | {"VIDFLEET_INPUT_BUCKETS": f"{inputs}/cams/north/", "VIDFLEET_OUTPUT_BUCKETS": "results-only"}
    refused = run_process(vidfleet_cli, env, f"s3://{inputs}/cams/north/", "--out", f"s3://{inputs}/out/")
    assert refused.returncode == 2 and f"--out s3://{inputs}/out/: outside the output buckets (results-only)" in refused.stderr
    assert s3_server.keys(inputs, "out/") == []
