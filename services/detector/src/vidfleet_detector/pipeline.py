"""Process one video: decode ahead -> batched model -> SORT + writers, each stage on its own thread.

`process_video` is what `vidfleet process` runs for each video and what the detect task runs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vidfleet_common.chunks import Chunk, chunk_unit
from vidfleet_common.errors import VidfleetError
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import VideoOutcome, VideoOutputs, VideoResult
from vidfleet_detector.analytics.video import EVENTS_SUFFIX, VideoCounting
from vidfleet_detector.decode import DecodedFrame, FrameReader, VideoInfo
from vidfleet_detector.drawing import draw_tracks
from vidfleet_detector.model_runner import Detections, ModelRunner
from vidfleet_detector.split.reader import ChunkReader
from vidfleet_detector.outputs import (
    ANNOTATED_SUFFIX,
    DETECTIONS_SUFFIX,
    TRACKS_SUFFIX,
    AnnotatedWriter,
    DetectionsWriter,
    StagedFile,
    TracksWriter,
)
from vidfleet_detector.tracking import Sort

# A short read beyond this fraction of the container's frame count is reported as a warning.
_SHORT_READ_TOLERANCE = 0.02


class ProgressSink(Protocol):
    def start(self, ref: VideoRef, total_frames: int | None) -> None: ...
    def advance(self, frames_read: int) -> None: ...
    def finish(self, result: VideoResult) -> None: ...


class PipelineObserver(Protocol):
    """Hooks for metrics, called on the pipeline's threads; must be cheap and must not raise."""

    def on_batch(self, frames: int, inference_seconds: float, detections: list[Detections]) -> None: ...
    def on_tracks(self, active_tracks: int) -> None: ...


class _Cancelled(Exception):
    pass


@dataclass
class _Batch:
    frames: list[DecodedFrame]
    detections: list[Detections]


@dataclass
class _Post:
    """Tracking and writing, off the model's thread. Items are _Batch; None is the end."""

    tracker: Sort
    tracks: TracksWriter
    detections: DetectionsWriter
    annotated: AnnotatedWriter | None
    names: dict[int, str]
    counting: VideoCounting | None = None
    observer: PipelineObserver | None = None
    queue: queue.Queue[_Batch | None] = field(default_factory=lambda: queue.Queue(maxsize=4))
    error: BaseException | None = None

    def run(self) -> None:
        try:
            while (batch := self.queue.get()) is not None:
                for frame, dets in zip(batch.frames, batch.detections):
                    number = frame.index + 1
                    self.detections.write(number, dets.boxes, dets.scores, dets.class_ids)
                    tracks = self.tracker.update(dets.as_sort_input())
                    self.tracks.write(number, tracks)
                    if self.counting is not None:
                        self.counting.frame(frame.index, tracks, self.tracker.track_ids)
                    if self.annotated is not None:
                        image = draw_tracks(frame.image, tracks, self.names)
                        self.annotated.write(self.counting.draw(image) if self.counting is not None else image)
                if self.observer is not None:
                    self.observer.on_tracks(self.tracker.active_tracks)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the model's thread
            self.error = exc
            while self.queue.get() is not None:  # keep the producer from blocking
                pass


def process_video(
    ref: VideoRef,
    config: JobConfig,
    runner: ModelRunner,
    out_dir: Path,
    *,
    progress: ProgressSink | None = None,
    should_stop: Callable[[], bool] | None = None,
    observer: PipelineObserver | None = None,
    temp_owner: str | None = None,
    chunk: Chunk | None = None,
) -> VideoResult:
    """Detect and track every `skip_frames`-th frame of `ref`; write its outputs under `out_dir`.

    With `chunk`, only the frames that chunk reads (vidfleet_common.chunks), into `<name>.chunkNNN.*`
    files for the stitcher: tracks with their class as an eleventh column, no annotated video (drawn
    once the ids are stitched), and the counter's end-of-video exits only in the last chunk.

    Never raises for a bad video: the failure is in the returned VideoResult. `temp_owner` (a worker
    incarnation) is written into the temporary file names, so that the leftovers of a killed run can be found.
    """
    started = time.perf_counter()
    base = _result_base(ref)
    name = ref.name if chunk is None else chunk_unit(ref.name, chunk.index)
    if chunk is not None:
        base["name"] = name
    if ref.error:
        return VideoResult(**base, outcome=VideoOutcome.FAILED, error=ref.error, error_kind=ref.error_kind)
    try:
        buffer = 2 * config.batch + 2
        reader: FrameReader | ChunkReader
        if chunk is None:
            reader = FrameReader(ref.source, stride=config.skip_frames, buffer=buffer, display=ref.display)
        else:
            reader = ChunkReader(ref.source, chunk, stride=config.skip_frames, buffer=buffer, display=ref.display)
    except VidfleetError as exc:
        return VideoResult(**base, outcome=VideoOutcome.FAILED, error=str(exc), error_kind=getattr(exc, "kind", "video"))
    info = reader.info
    if progress:
        progress.start(ref, info.total_frames)
    staged = _stage(out_dir, name, config.visualize and chunk is None, config.counting, temp_owner)
    post: _Post | None = None
    try:
        counting = _counting(config, runner, info, staged.get("events"))
        post = _Post(
            tracker=Sort(max_age=config.max_age, min_hits=config.min_hits, iou_threshold=config.iou_threshold),
            tracks=TracksWriter(staged["tracks"], with_class=chunk is not None),
            detections=DetectionsWriter(staged["detections"], runner.names, max_in_memory=config.max_detections_in_memory),
            annotated=_annotated_writer(staged.get("annotated"), info, config.skip_frames),
            names=runner.names,
            counting=counting,
            observer=observer,
        )
        worker = threading.Thread(target=post.run, name="vidfleet-post", daemon=True)
        worker.start()
        processed = 0
        try:
            for batch in _batches(reader, config.batch):
                if should_stop and should_stop():
                    raise _Cancelled
                t0 = time.perf_counter()
                dets = runner.predict([f.image for f in batch])
                if observer is not None:
                    observer.on_batch(len(batch), time.perf_counter() - t0, dets)
                if post.error:
                    raise post.error
                post.queue.put(_Batch(batch, dets))
                processed += len(batch)
                if progress:
                    progress.advance(reader.frames_read)
        finally:
            reader.close()
            post.queue.put(None)
            worker.join()
        if post.error:
            raise post.error
        if counting is not None and (chunk is None or chunk.index == chunk.count - 1):
            counting.finish(reader.frames_read if chunk is None else chunk.end)
        _close_writers(post)
        for file in staged.values():
            file.commit()
    except _Cancelled:
        reader.close()
        _abandon(post, staged, keep_partial=config.save_intermediate_results)
        return _finish(progress, VideoResult(**base, outcome=VideoOutcome.CANCELLED, error="cancelled", error_kind="cancelled", **_stats(reader, info, started)))
    except Exception as exc:  # noqa: BLE001 - one video's failure must not end the job
        reader.close()  # idempotent; a failure before the first batch (a writer, the counting config) leaves it running
        _abandon(post, staged, keep_partial=config.save_intermediate_results)
        kind = getattr(exc, "kind", None) or ("model" if "model" in type(exc).__name__.lower() else "internal")
        message = str(exc) if isinstance(exc, VidfleetError) else f"{ref.display}: {type(exc).__name__}: {exc}"
        return _finish(progress, VideoResult(**base, outcome=VideoOutcome.FAILED, error=message, error_kind=kind, **_stats(reader, info, started)))

    result = VideoResult(
        **base,
        outcome=VideoOutcome.SUCCEEDED,
        frames_processed=processed,
        detections=post.detections.count,
        tracks=len(post.tracks.ids),
        track_rows=post.tracks.rows,
        warning=_short_read_warning(reader.frames_read, info.total_frames),
        outputs=VideoOutputs(**{k: str(f.final.relative_to(out_dir)) for k, f in staged.items()}),
        counts=post.counting.counts if post.counting is not None else None,
        **_stats(reader, info, started),
    )
    return _finish(progress, result)


def _result_base(ref: VideoRef) -> dict[str, str]:
    return {"video": ref.display, "name": ref.name}


def _stage(out_dir: Path, name: str, visualize: bool, counting: bool, owner: str | None) -> dict[str, StagedFile]:
    files = {"tracks": TRACKS_SUFFIX, "detections": DETECTIONS_SUFFIX}
    if visualize:
        files["annotated"] = ANNOTATED_SUFFIX
    if counting:
        files["events"] = EVENTS_SUFFIX
    return {key: StagedFile(out_dir, name, suffix, owner=owner) for key, suffix in files.items()}


def _counting(config: JobConfig, runner: ModelRunner, info: VideoInfo, staged: StagedFile | None) -> VideoCounting | None:
    if staged is None:
        return None
    return VideoCounting(config, runner.names, width=info.width, height=info.height, fps=info.fps, staged=staged)


def _annotated_writer(staged: StagedFile | None, info: VideoInfo, stride: int) -> AnnotatedWriter | None:
    if staged is None:
        return None
    fps = (info.fps or 25.0) / stride
    return AnnotatedWriter(staged, fps=fps, width=info.width, height=info.height)


def _batches(reader: FrameReader, size: int):
    batch: list[DecodedFrame] = []
    for frame in reader:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _close_writers(post: _Post) -> None:
    post.tracks.close()
    post.detections.close()
    if post.annotated is not None:
        post.annotated.close()
    if post.counting is not None:
        post.counting.close()


def _abandon(post: _Post | None, staged: dict[str, StagedFile], *, keep_partial: bool) -> None:
    if post is not None:
        try:
            _close_writers(post)
        except Exception:  # noqa: BLE001 - the original failure is the one to report
            pass
    for file in staged.values():
        file.discard(keep_partial=keep_partial)


def _stats(reader: FrameReader, info: VideoInfo, started: float) -> dict[str, object]:
    seconds = time.perf_counter() - started
    return {
        "frames": reader.frames_read,
        "total_frames": info.total_frames,
        "video_fps": info.fps,
        "width": info.width,
        "height": info.height,
        "seconds": round(seconds, 4),
        "fps": round(reader.frames_read / seconds, 2) if seconds > 0 else 0.0,
    }


def _short_read_warning(frames_read: int, total: int | None) -> str | None:
    if total and frames_read < total * (1 - _SHORT_READ_TOLERANCE):
        return f"decoded {frames_read} of the {total} frames the container reports (truncated file?)"
    return None


def _finish(progress: ProgressSink | None, result: VideoResult) -> VideoResult:
    if progress:
        progress.finish(result)
    return result
