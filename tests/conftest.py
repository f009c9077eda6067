"""Shared fixtures: generated videos with ground truth, and the bundled model's config."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3 import WeedServer
from tests.servers import RedisServer

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODEL = "vidfleet-shapes-n.pt"

# ultralytics writes a settings file; keep it inside the checkout and never go online.
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO_ROOT / ".cache" / "ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the tests that only read and write (each under its own key prefix).

    Tests that kill or restart Redis start their own.
    """
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedServer]:
    """One real S3-compatible server (SeaweedFS) for the session; each test makes its own buckets.

    Tests that stop the endpoint start their own."""
    server = WeedServer(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vidfleet_cli() -> list[str]:
    """The installed `vidfleet` command, run as a real subprocess."""
    return [str(Path(sys.executable).with_name("vidfleet"))]


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Short generated test videos (seeds < 1000: never used for training) with ground truth."""
    from vidfleet_detector.synthetic import generate_video

    folder = tmp_path_factory.mktemp("videos")
    generate_video(folder / "short_a.mp4", seed=1, frames=30, objects=3)
    generate_video(folder / "short_b.mp4", seed=2, frames=24, objects=4)
    return folder
