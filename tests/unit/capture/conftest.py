"""Fixtures for the capture service's tests: one real redis-server, small generated videos, a key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import RedisServer
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.fleet import redis_client
from vidfleet_common.settings import Settings


@pytest.fixture(scope="session")
def capture_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("capture-redis"), appendonly=False).start()
    yield server
    server.kill()


@pytest.fixture
def client(capture_redis: RedisServer):
    """The client every vidfleet process uses (retries through a Redis restart), raw bytes out."""
    return redis_client(Settings(CELERY_BROKER_URL=capture_redis.url))


@pytest.fixture
def keys() -> RedisKeys:
    return RedisKeys(f"t{uuid.uuid4().hex[:8]}:")


@pytest.fixture(scope="session")
def capture_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """'vga': 640x480 at 15 fps, 45 frames (generated scene); 'tiny': 64x48 at 30 fps, 240 frames (small entries)."""
    from tests.videos import write_video
    from vidfleet_detector.synthetic import generate_video

    folder = tmp_path_factory.mktemp("capture-videos")
    vga = generate_video(folder / "vga.mp4", seed=7, frames=45, width=640, height=480, fps=15.0, objects=3).video
    tiny = write_video(folder / "tiny.mp4", 240, size=(64, 48), fps=30.0)
    return {"vga": Path(vga), "tiny": tiny}
