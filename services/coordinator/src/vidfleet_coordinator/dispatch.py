"""Accept a job: confine and resolve its inputs, record it in Redis, send one `detect` task per video.

Inputs that break the rules (a path outside the input roots, an object outside the input buckets, a URL
scheme not allowed) refuse the
whole submission: nothing is recorded. Inputs that are merely bad (a missing file) become failed
videos of the job, so the rest of it goes on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vidfleet_common.buckets import BucketUrlError, S3Url, inside_buckets, is_s3, join
from vidfleet_common.chunks import Chunk, chunk_unit, plan_source
from vidfleet_common.contracts import Queue, TaskName
from vidfleet_common.errors import ConfigError, InputError
from vidfleet_common.fleet import DetectRequest, detect_task_id
from vidfleet_common.inputs import VideoRef, inside_roots, is_url, resolve_inputs
from vidfleet_common.job_config import JobConfig
from vidfleet_common.jobs import JobRecord, JobState, JobStore, JobVideo
from vidfleet_common.results import VideoOutcome, VideoResult
from vidfleet_common.settings import Settings, scrub_url

MAX_INPUTS = 10_000


class SubmissionRefused(InputError):
    """The submission breaks a security rule (input roots, URL schemes); nothing was recorded."""


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def confine_inputs(inputs: Sequence[str], settings: Settings) -> list[str]:
    """Absolute, confined inputs. Relative paths are taken relative to the first input root."""
    if not inputs:
        raise InputError("a job needs at least one input (a file, a folder or a URL)")
    if len(inputs) > MAX_INPUTS:
        raise InputError(f"a job takes at most {MAX_INPUTS} inputs, got {len(inputs)}")
    roots = [root.resolve() for root in settings.input_roots]
    allowed = {s.lower() for s in settings.allowed_url_schemes}
    confined: list[str] = []
    for item in inputs:
        if is_s3(item):
            confined.append(_confine_s3(item, settings))
            continue
        if is_url(item):
            scheme = urlsplit(item).scheme.lower()
            if scheme not in allowed:
                raise SubmissionRefused(
                    f"{scrub_url(item)}: URL scheme '{scheme}' is not allowed (allowed: {', '.join(sorted(allowed))})"
                )
            confined.append(item)
            continue
        if not roots:
            raise SubmissionRefused(f"{item}: file inputs are disabled: the coordinator has no input roots (VIDFLEET_INPUT_ROOTS)")
        path = Path(item)
        if not path.is_absolute():
            path = roots[0] / path
        if not inside_roots(path, roots):  # symlinks followed: an escape through a link is refused too
            raise SubmissionRefused(f"{item}: outside the input roots ({', '.join(str(r) for r in roots)})")
        confined.append(str(path))
    return confined


def _confine_s3(item: str, settings: Settings) -> str:
    try:
        url = S3Url.parse(item)
    except BucketUrlError as exc:
        raise InputError(str(exc)) from None
    if not settings.input_buckets:
        raise SubmissionRefused(f"{item}: s3:// inputs are disabled: the coordinator has no input buckets (VIDFLEET_INPUT_BUCKETS)")
    if not inside_buckets(url, settings.input_buckets):
        raise SubmissionRefused(f"{item}: outside the input buckets ({', '.join(settings.input_buckets)})")
    return item


def job_out_dir(settings: Settings, job_id: str) -> str:
    """The job's folder, or its s3:// prefix (ending in '/'), under the output root."""
    if isinstance(settings.output_root, str):
        return join(settings.output_root, f"{job_id}/")
    return str(settings.output_root.resolve() / job_id)


def submit_job(
    store: JobStore, celery_app: Any, settings: Settings, inputs: Sequence[str], config: dict[str, Any] | None, *, epoch: str | None = None
) -> JobRecord:
    """Validate, record and dispatch a job in fleet `epoch`; returns its record. Raises ConfigError/SubmissionRefused."""
    job_config = JobConfig.from_mapping(config or {})
    if job_config.output_folder is not None:
        raise ConfigError("config key 'output_folder': not used on the fleet; results go to the job's folder under the output root")
    refs = resolve_inputs(
        confine_inputs(inputs, settings),
        input_roots=settings.input_roots,
        url_schemes=settings.allowed_url_schemes,
        input_buckets=settings.input_buckets,
    )
    job_id = new_job_id()
    out_dir = job_out_dir(settings, job_id)
    if not is_s3(out_dir):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    record = JobRecord(
        job_id=job_id,
        out_dir=out_dir,
        config=job_config.model_dump(mode="json"),
        videos=[_job_video(r, job_config, out_dir) for r in refs],
        epoch=epoch,
    )
    store.create(record)
    for ref in refs:
        if ref.error:
            store.video_finished(job_id, _refused(ref))
    for video in record.videos:
        if video.error is None:
            for chunk in video.chunks or [None]:
                request = DetectRequest(job_id=job_id, video=video, config=record.config, out_dir=out_dir, epoch=epoch, chunk=chunk)
                unit = video.name if chunk is None else chunk_unit(video.name, chunk.index)
                celery_app.send_task(
                    TaskName.DETECT_VIDEO.value,
                    kwargs={"request": request.model_dump(mode="json")},
                    queue=Queue.DETECT.value,
                    task_id=detect_task_id(job_id, unit),
                )
    return record


def _job_video(ref: VideoRef, config: JobConfig, out_dir: str) -> JobVideo:
    """The video as dispatched; split into chunks (a probe: demuxing, no decoding) when the config says so."""
    chunks: list[Chunk] = []
    warning = None
    if ref.error is None and config.split_seconds is not None:
        if is_s3(ref.source) or is_s3(out_dir):
            warning = "not split: splitting on the fleet needs the video and the results on a shared volume, not in a bucket; processed whole"
        else:
            chunks, warning = plan_source(ref.source, config.split_seconds, config.split_overlap_seconds, display=ref.display)
    return JobVideo(source=ref.source, name=ref.name, error=ref.error, error_kind=ref.error_kind, chunks=chunks, warning=warning)


def send_step(celery_app: Any, record: JobRecord, video: JobVideo, task: TaskName, unit: str, chunk: Chunk | None = None) -> None:
    """A step of a split video after its chunks (stitch, render a chunk's part, join), keyed by `unit` like a
    video: the reaper gives it back like one."""
    request = DetectRequest(job_id=record.job_id, video=video, config=record.config, out_dir=record.out_dir, epoch=record.epoch, chunk=chunk)
    celery_app.send_task(
        task.value,
        kwargs={"request": request.model_dump(mode="json")},
        queue=Queue.DETECT.value,
        task_id=detect_task_id(record.job_id, unit),
    )


def cancel_job(store: JobStore, celery_app: Any, record: JobRecord) -> JobRecord:
    """Stop dispatching: flag the job, revoke its queued tasks, settle videos nobody has started.

    Running videos see the flag between batches and end `cancelled`; a worker that takes a queued
    task before the revoke reaches it sees the flag first thing and does not start.
    """
    if record.state.finished:
        return record
    store.cancel(record.job_id)
    record.state = JobState.CANCELLING
    store.save(record)
    done = set(store.results(record.job_id))
    pending = [(v, unit) for v in record.videos if v.error is None and v.name not in done for unit in v.units() if unit not in done]
    if pending:
        celery_app.control.revoke([detect_task_id(record.job_id, unit) for _, unit in pending])
    running = set(store.running(record.job_id))
    for video, unit in pending:
        if unit not in running:
            store.video_settled_if_pending(
                record.job_id,
                VideoResult(video=scrub_url(video.source), name=unit, outcome=VideoOutcome.CANCELLED, error="cancelled", error_kind="cancelled"),
            )  # a split video's chunks, all settled, are then stitched into a cancelled video
    return record


def _refused(ref: VideoRef) -> VideoResult:
    return VideoResult(video=ref.display, name=ref.name, outcome=VideoOutcome.FAILED, error=ref.error, error_kind=ref.error_kind)
