"""Temporary output names: the contract between the workers that write them and the coordinator that
removes what a dead worker left behind.

A video's outputs are written as `.tmp-<owner>-<random>-<final name>` beside their final names and
renamed when the video succeeds. `<owner>` is the worker process incarnation
(vidfleet_common.heartbeats), so a killed run's files can be told from those of a run still going.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("vidfleet.staging")

TEMP_PREFIX = ".tmp-"


def temp_name(final_name: str, tag: str) -> str:
    return f"{TEMP_PREFIX}{tag}-{final_name}"


def remove_temp_files(folder: Path, owner: str | None = None) -> list[Path]:
    """Remove the temporary outputs under `folder` (recursively) of `owner`, or of everyone; returns them."""
    pattern = f"{TEMP_PREFIX}{owner}-*" if owner else f"{TEMP_PREFIX}*"
    removed = []
    for temp in sorted(folder.rglob(pattern)):
        try:
            temp.unlink()
            removed.append(temp)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove %s: %s", temp, exc)
    return removed
