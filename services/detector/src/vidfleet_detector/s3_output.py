"""A video's outputs under an s3:// prefix: written to a local staging folder as on disk, uploaded once it succeeded.

A reader of the bucket never sees a half-written object: each output is uploaded whole (multipart past 64 MB,
completed or not there at all), only after the video succeeded. A redelivered video uploads an object only
if the bucket does not already hold the same bytes. The staging folder lives under the temporary directory
(TMPDIR; an emptyDir in a pod) and is removed when the video ends.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from vidfleet_common.buckets import S3Url, is_s3
from vidfleet_common.results import VideoOutcome, VideoResult

log = logging.getLogger("vidfleet.detector.s3_output")

STAGING_PREFIX = "vidfleet-staging-"


def process_to(out: str | Path, run: Callable[[Path], VideoResult], *, owner: str | None = None) -> VideoResult:
    """`run(folder)` processes the video into `folder`; with an s3:// `out` that folder is a local staging one
    whose outputs are uploaded under `out` when the video succeeded. A video whose outputs cannot be saved fails
    with the reason."""
    if not is_s3(out):
        return run(Path(out))
    from vidfleet_common.objects import StorageError, default_store

    prefix = S3Url.parse(str(out))
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{owner + '-' if owner else ''}"))
    try:
        result = run(staging)
        if not result.ok:
            return result
        store = default_store()
        try:
            for relative in _outputs(result):
                uploaded = store.upload_file(staging / relative, prefix.child(relative))
                if not uploaded:
                    log.info("%s already holds these bytes; not uploaded again", prefix.child(relative))
        except StorageError as exc:
            return result.model_copy(
                update={"outcome": VideoOutcome.FAILED, "error": f"{result.video}: processed, but {exc}", "error_kind": "output"}
            )
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_staging(is_alive: Callable[[str], bool], mine: str | None = None) -> list[Path]:
    """Remove the staging folders that killed worker processes left in the temporary directory (a pod's /tmp
    emptyDir outlives a container restart); returns them."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{STAGING_PREFIX}*-*"):
        owner = folder.name[len(STAGING_PREFIX):].rsplit("-", 1)[0]
        if owner and owner != mine and not is_alive(owner):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _outputs(result: VideoResult) -> list[str]:
    return [path for path in result.outputs.model_dump().values() if path]
