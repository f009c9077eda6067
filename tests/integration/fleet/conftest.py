"""Fixtures for tests of the distributed fleet: real redis-server, coordinator and detector worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_MODEL
from tests.fleet import Fleet

# Every job on the test fleet uses the shipped model (the default checkpoint would need a download).
JOB_CONFIG = {"model": BUNDLED_MODEL, "min_hits": 2, "max_age": 3}


@pytest.fixture(scope="session")
def fleet_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The input root: short videos for quick jobs, longer ones to kill or cancel in the middle of."""
    from vidfleet_detector.synthetic import generate_video

    root = tmp_path_factory.mktemp("fleet-input")
    for i in range(4):
        generate_video(root / "short" / f"clip{i}.mp4", seed=40 + i, frames=40, objects=3)
    for i in range(3):
        generate_video(root / "long" / f"long{i}.mp4", seed=50 + i, frames=240, objects=4)
    return root


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, fleet_videos: Path) -> Iterator[Fleet]:
    """Redis, a coordinator and two detector workers (one process each), shared by a module's tests."""
    running = Fleet.start(tmp_path_factory.mktemp("fleet"), fleet_videos, workers=2)
    try:
        yield running
    finally:
        running.close()


def leftover_temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.startswith(".tmp-") or ".partial." in p.name)
