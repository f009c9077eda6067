"""Our SORT must reproduce the reference sort.py (abewley/sort@2236dff) output on its own test data.

The golden files are vendored in ``tests/data/sort`` (a copy of the workspace's ``shared/data/sort``, with its
README and license notice); set VIDFLEET_SORT_DATA to use another folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vidfleet_detector.tracking import track_mot_file

SEQUENCES = ["KITTI-13", "ETH-Sunnyday"]
BOX_TOLERANCE_PX = 0.01


def _data_root() -> Path:
    override = os.environ.get("VIDFLEET_SORT_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "data" / "sort"


def _load_rows(path: Path) -> np.ndarray:
    """MOT rows as a float array sorted by (frame, id); the file's within-frame order is not meaningful."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    if rows.size == 0:
        return np.empty((0, 10))
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def _first_difference(ours: np.ndarray, ref: np.ndarray) -> str:
    frames = sorted(set(ours[:, 0].astype(int)) | set(ref[:, 0].astype(int)))
    for frame in frames:
        a = ours[ours[:, 0] == frame]
        b = ref[ref[:, 0] == frame]
        if a.shape != b.shape or not np.array_equal(a[:, 1], b[:, 1]):
            ours_ids, ref_ids = a[:, 1].astype(int).tolist(), b[:, 1].astype(int).tolist()
            return f"frame {frame}: ours ids {ours_ids}, reference ids {ref_ids}"
        if np.abs(a[:, 2:6] - b[:, 2:6]).max(initial=0.0) > BOX_TOLERANCE_PX:
            return f"frame {frame}: boxes differ\nours\n{a[:, 1:6]}\nreference\n{b[:, 1:6]}"
    return "no difference"


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_matches_reference_sort(sequence: str, tmp_path: Path) -> None:
    root = _data_root()
    assert root.is_dir(), f"SORT golden data not found: {root} (set VIDFLEET_SORT_DATA to its folder)"
    seq_dir = root / sequence
    assert (seq_dir / "det.txt").is_file(), f"{seq_dir / 'det.txt'} is missing from the SORT golden data"
    assert (seq_dir / "sort_reference.txt").is_file(), f"{seq_dir / 'sort_reference.txt'} is missing"

    out = tmp_path / f"{sequence}.txt"
    written = track_mot_file(seq_dir / "det.txt", out, max_age=1, min_hits=3, iou_threshold=0.3)

    ours = _load_rows(out)
    ref = _load_rows(seq_dir / "sort_reference.txt")
    assert written == len(ours)
    first = _first_difference(ours, ref)
    assert len(ours) == len(ref), f"row count {len(ours)} != reference {len(ref)}; first: {first}"
    assert np.array_equal(ours[:, :2], ref[:, :2]), f"(frame, id) rows differ; first: {first}"
    worst = np.abs(ours[:, 2:6] - ref[:, 2:6]).max(initial=0.0)
    # 1e-9 absorbs the binary representation of two-decimal values.
    assert worst <= BOX_TOLERANCE_PX + 1e-9, f"box differs by {worst} px; first: {first}"
    assert np.array_equal(ours[:, 6:], ref[:, 6:])
