"""Counting against ground truth: the generator knows every trajectory, so the true crossings and zone
entries of a generated video are known (tests/counting_truth.py); model + tracker + counter must find them.

Required: at least 98 % of the true crossings counted, none counted twice, the direction right for every
one counted, and no crossing of nothing. Zone entries: at least 98 % of the true ones counted (an object
found again under a new track id enters again: docs/counting.md; those extra entries are reported).

Measured with the shipped model (900 frames each, 4 objects, SORT max_age 5 / min_hits 2, skip_frames 1):
  seed 500: 53 of 53 crossings, 23 of 23 entries; seed 503: 74 of 74 crossings, 28 of 28 entries.
Harder scenes, for the record (not asserted): 5 objects (seed 502) 56 of 59 crossings (the misses are
tracks lost under occlusion, found again past the line); skip_frames 2 (seed 500) 51 of 53 (an id switch
at the line) -- a track found again under a new id is a new object, so it cannot count a crossing it
was not seen making.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_MODEL
from tests.counting_truth import score, true_crossings, true_entries
from vidfleet_common.job_config import JobConfig
from vidfleet_detector.job import run_job
from vidfleet_detector.synthetic import TEST_SEED_LIMIT, generate_video

pytestmark = pytest.mark.slow

SEEDS = (500, 503)
assert all(seed < TEST_SEED_LIMIT for seed in SEEDS)  # never used for training
LINES = [{"name": f"x{x}", "points": [[x, 40], [x, 440]]} for x in (160, 320, 480)] + [
    {"name": f"y{y}", "points": [[40, y], [600, y]], "directions": ["down", "up"]} for y in (160, 320)
]
ZONES = [
    {"name": "left", "polygon": [[60, 60], [300, 60], [300, 420], [60, 420]]},
    {"name": "wedge", "polygon": [[380, 80], [600, 420], [360, 420]]},
]
CONFIG = {"model": BUNDLED_MODEL, "device": "cpu", "batch": 8, "max_age": 5, "min_hits": 2, "lines": LINES, "zones": ZONES}


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, JobConfig]:
    inputs, out = tmp_path_factory.mktemp("gt-videos"), tmp_path_factory.mktemp("gt-out")
    for seed in SEEDS:
        generate_video(inputs / f"seed{seed}.mp4", seed=seed, frames=900, objects=4)
    config = JobConfig.from_mapping(CONFIG)
    result = run_job([str(inputs)], config, out)
    assert result.success, result.message
    return inputs, out, config


def events_of(out: Path, seed: int) -> list[dict]:
    return [json.loads(line) for line in (out / f"seed{seed}.events.jsonl").read_text().splitlines()]


def test_crossings_match_the_ground_truth(counted: tuple[Path, Path, JobConfig]) -> None:
    inputs, out, config = counted
    scores = []
    for seed in SEEDS:
        video = inputs / f"seed{seed}.mp4"
        scored = score(video, true_crossings(video, config.lines), events_of(out, seed), out / f"seed{seed}.tracks.txt", kind="cross", key="line")
        print(f"seed {seed}: {scored.summary()}")
        scores.append(scored)
        assert scored.twice == [], f"seed {seed}: counted twice: {scored.twice}"
        assert scored.wrong_direction == [], f"seed {seed}: wrong direction: {scored.wrong_direction}"
        assert scored.unmatched == [], f"seed {seed}: crossings of nothing: {scored.unmatched}"
    required = sum(len(s.required) for s in scores)
    missed = [t for s in scores for t in s.missed]
    assert required >= 100, "too few crossings to measure 98 %"
    assert 1 - len(missed) / required >= 0.98, f"{len(missed)} of {required} true crossings missed: {missed}"


def test_zone_entries_match_the_ground_truth(counted: tuple[Path, Path, JobConfig]) -> None:
    inputs, out, config = counted
    required, missed = 0, []
    for seed in SEEDS:
        video = inputs / f"seed{seed}.mp4"
        scored = score(video, true_entries(video, config.zones), events_of(out, seed), out / f"seed{seed}.tracks.txt", kind="enter", key="zone")
        print(f"seed {seed}: {scored.summary()}")
        required += len(scored.required)
        missed += scored.missed
    assert required >= 40 and 1 - len(missed) / required >= 0.98, f"{len(missed)} of {required} true entries missed: {missed}"


def test_the_counts_are_the_events_tallied(counted: tuple[Path, Path, JobConfig]) -> None:
    _, out, _ = counted
    result = json.loads((out / "result.json").read_text())
    for video in result["videos"]:
        events = events_of(out, int(video["name"].removeprefix("seed")))
        for name, line in video["counts"]["lines"].items():
            for direction, count in line["crossings"].items():
                assert count == sum(1 for e in events if e.get("line") == name and e["direction"] == direction)
        for name, zone in video["counts"]["zones"].items():
            assert zone["entries"] == sum(1 for e in events if e.get("zone") == name and e["kind"] == "enter")
            assert zone["exits"] == zone["entries"] and zone["inside"] == 0  # every visit closes by the end
    total = result["counts"]["lines"]["x320"]["crossings"]
    assert total == {d: sum(v["counts"]["lines"]["x320"]["crossings"][d] for v in result["videos"]) for d in ("in", "out")}
