"""Run a whole job in this process: every video through `process_video`, then `result.json`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from vidfleet_common.counting import check_class_names
from vidfleet_common.counts import sum_counts
from vidfleet_common.errors import ModelError, VidfleetError
from vidfleet_common.inputs import DEFAULT_URL_SCHEMES, VideoRef, resolve_inputs
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import JobResult, VideoOutcome, VideoResult, job_state, now_iso, versions, write_result
from vidfleet_detector.model_runner import ModelRunner
from vidfleet_detector.pipeline import ProgressSink, process_video
from vidfleet_detector.s3_output import process_to
from vidfleet_detector.split.run import plan_video, process_split

def run_job(
    inputs: Sequence[str],
    config: JobConfig,
    out_dir: Path | str,
    *,
    job_id: str | None = None,
    progress: Callable[[], ProgressSink] | None = None,
    input_roots: Sequence[Path] = (),
    url_schemes: Sequence[str] = DEFAULT_URL_SCHEMES,
    input_buckets: Sequence[str] = (),
) -> JobResult:
    """Process every input; failures are recorded per video and the rest go on. Writes result.json (last).

    `out_dir` is a folder or an s3://bucket/prefix/ (vidfleet_detector.s3_output).

    Raises ConfigError (before any video) when a counting line or zone names a class the model does not have."""
    started_at, started = now_iso(), time.perf_counter()
    refs = resolve_inputs(inputs, input_roots=input_roots, url_schemes=url_schemes, input_buckets=input_buckets)
    runner: ModelRunner | None = None
    model_error: ModelError | None = None
    model_load_s = 0.0
    results: list[VideoResult] = []
    for ref in refs:
        if runner is None and model_error is None and not ref.error:
            t0 = time.perf_counter()
            try:
                runner = ModelRunner(config)
            except ModelError as exc:
                model_error = exc
            model_load_s = time.perf_counter() - t0
            if runner is not None:
                check_class_names(config.lines, config.zones, runner.names, model=config.model)
        if model_error is not None and not ref.error:
            results.append(_failed(ref, str(model_error), "model"))
            continue
        sink = progress() if progress else None
        results.append(process_to(out_dir, lambda folder: _process(ref, config, runner, folder, sink)))  # type: ignore[arg-type]
    result = _job_result(job_id or uuid.uuid4().hex[:12], results, config, started_at, started, model_load_s)
    try:
        write_result(result, out_dir)
    except VidfleetError as exc:  # an output bucket that refuses writes, an endpoint gone
        raise ResultNotSaved(result, exc) from None
    return result


class ResultNotSaved(VidfleetError):
    """Every video ran but result.json could not be written; `result` is what it would have said."""

    def __init__(self, result: JobResult, error: Exception) -> None:
        super().__init__(f"result.json not written: {error}")
        self.result = result


def _process(ref: VideoRef, config: JobConfig, runner: ModelRunner, out_dir: Path, sink: ProgressSink | None) -> VideoResult:
    """One video into `out_dir`: split into chunks when the config says so, else whole."""
    chunks, not_split = plan_video(ref, config)
    if chunks:
        if sink is not None:
            sink.start(ref, chunks[-1].end)
        result = process_split(ref, config, runner, out_dir, chunks, progress=sink)
        if sink is not None:
            sink.finish(result)
        return result
    result = process_video(ref, config, runner, out_dir, progress=sink)
    if not_split and result.ok:
        result = result.model_copy(update={"warning": "; ".join(w for w in (result.warning, not_split) if w)})
    return result


def _failed(ref: VideoRef, error: str, kind: str) -> VideoResult:
    return VideoResult(video=ref.display, name=ref.name, outcome=VideoOutcome.FAILED, error=error, error_kind=kind)


def _job_result(
    job_id: str, videos: list[VideoResult], config: JobConfig, started_at: str, started: float, model_load_s: float
) -> JobResult:
    state = job_state(videos)
    failed = sum(1 for v in videos if v.outcome is VideoOutcome.FAILED)
    ok = len(videos) - failed
    if not videos:
        message = "no videos to process"
    elif failed:
        message = f"{ok} of {len(videos)} videos succeeded, {failed} failed"
    else:
        message = f"all {len(videos)} videos succeeded" if len(videos) > 1 else "the video succeeded"
    return JobResult(
        job_id=job_id,
        success=state == "succeeded",
        state=state,
        message=message,
        videos=videos,
        counts=sum_counts(v.counts for v in videos),
        config=config.model_dump(mode="json"),
        versions=versions(),
        timings={
            "total_s": round(time.perf_counter() - started, 3),
            "model_load_s": round(model_load_s, 3),
            "video_s": round(sum(v.seconds for v in videos), 3),
        },
        started_at=started_at,
        finished_at=now_iso(),
    )
