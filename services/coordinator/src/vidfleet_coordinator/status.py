"""A job's status as the API and the CLI show it: progress per video and for the whole job."""

from __future__ import annotations


from pydantic import BaseModel, Field

from vidfleet_common.buckets import join
from vidfleet_common.jobs import JobRecord, JobStore, JobVideo
from vidfleet_common.results import RESULT_FILE, VideoResult
from vidfleet_common.settings import scrub_url


class VideoStatus(BaseModel):
    name: str
    video: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled.")
    frames: int = Field(0, description="Frames read so far (or in all, once finished).")
    total_frames: int | None = None
    worker: str | None = None
    error: str | None = None
    error_kind: str | None = None
    warning: str | None = None
    chunks: int | None = Field(None, description="A split video: its chunks.")
    chunks_done: int | None = Field(None, description="A split video: its chunks that have ended.")


class JobStatus(BaseModel):
    job_id: str
    state: str
    message: str
    created_at: str
    finished_at: str | None
    out_dir: str
    result_file: str | None = Field(None, description="result.json, once the job is finished.")
    videos_total: int
    videos_succeeded: int
    videos_failed: int
    videos_cancelled: int
    videos_running: int
    videos_queued: int
    frames_done: int
    videos: list[VideoStatus] = Field(default_factory=list)


def job_status(store: JobStore, record: JobRecord, *, with_videos: bool = True) -> JobStatus:
    results = store.results(record.job_id)
    progress = store.progress(record.job_id)
    running = store.running(record.job_id)
    videos: list[VideoStatus] = []
    for video in record.videos:
        result = results.get(video.name)
        if result is not None:
            status = VideoStatus(
                name=video.name, video=result.video, state=result.outcome.value, frames=result.frames, total_frames=result.total_frames,
                error=result.error, error_kind=result.error_kind, warning=result.warning,
                chunks=len(video.chunks) or None, chunks_done=len(video.chunks) or None,
            )
        elif video.chunks:
            status = _split_status(video, results, progress, running)
        else:
            state = "running" if video.name in running else "queued"
            status = VideoStatus(
                name=video.name, video=scrub_url(video.source), state=state, frames=progress.get(video.name, 0),
                worker=running.get(video.name),
            )
        videos.append(status)
    count = {s: sum(1 for v in videos if v.state == s) for s in ("succeeded", "failed", "cancelled", "running", "queued")}
    result_file = join(record.out_dir, RESULT_FILE)
    return JobStatus(
        job_id=record.job_id,
        state=record.state.value,
        message=record.message,
        created_at=record.created_at,
        finished_at=record.finished_at,
        out_dir=record.out_dir,
        result_file=result_file if record.state.finished else None,
        videos_total=len(videos),
        videos_succeeded=count["succeeded"],
        videos_failed=count["failed"],
        videos_cancelled=count["cancelled"],
        videos_running=count["running"],
        videos_queued=count["queued"],
        frames_done=sum(v.frames for v in videos),
        videos=videos if with_videos else [],
    )


def _split_status(video: JobVideo, results: dict[str, VideoResult], progress: dict[str, int], running: dict[str, str]) -> VideoStatus:
    """A split video in progress: the frames its chunks own and have read, the workers running them."""
    frames, done, workers = 0, 0, []
    for chunk, unit in zip(video.chunks, video.units()):
        read = results[unit].frames if unit in results else progress.get(unit, 0)
        frames += max(0, min(chunk.frames, read - (chunk.start - chunk.read_from)))
        done += unit in results
        if unit in running:
            workers.append(running[unit])
    stitching = video.name in running
    state = "running" if workers or stitching or done else "queued"
    worker = running.get(video.name) or (", ".join(sorted(set(workers))) if workers else None)
    return VideoStatus(
        name=video.name, video=scrub_url(video.source), state=state, frames=frames, total_frames=video.chunks[-1].end,
        worker=worker, chunks=len(video.chunks), chunks_done=done,
    )
