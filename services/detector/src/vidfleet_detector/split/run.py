"""A split video end to end: plan its chunks, and stitch the chunks' results into the video's result.

`vidfleet process` runs the chunks one after the other in this process (`process_split`), then the
stitch and, with `visualize`, the drawing of each chunk's part and the join; the fleet runs each chunk
as a `detect` task and each later step as a task of its own (vidfleet_detector.fleet.tasks). Both call
the same functions, so local and fleet runs write the same files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vidfleet_common.chunks import Chunk, ChunkSummary, SplitSummary, plan_source
from vidfleet_common.errors import VidfleetError
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import VideoOutcome, VideoOutputs, VideoResult
from vidfleet_detector.analytics.video import EVENTS_SUFFIX
from vidfleet_detector.outputs import DETECTIONS_SUFFIX, TRACKS_SUFFIX, StagedFile
from vidfleet_detector.split.render import join_video, render_chunk, write_id_maps
from vidfleet_detector.split.stitch import EventReplay, copy_owned_lines, owned_events, stitch_tracks

if TYPE_CHECKING:
    from vidfleet_detector.model_runner import ModelRunner
    from vidfleet_detector.pipeline import ProgressSink


def plan_video(ref: VideoRef, config: JobConfig) -> tuple[list[Chunk], str | None]:
    """The chunks of `ref` under `config` ([] to process it whole) and, when it is not split, why."""
    if ref.error:
        return [], None
    return plan_source(ref.source, config.split_seconds, config.split_overlap_seconds, display=ref.display)


def stitch_video(
    ref: VideoRef,
    config: JobConfig,
    chunks: Sequence[Chunk],
    results: Sequence[VideoResult],
    out_dir: Path,
    *,
    names: dict[int, str],
    temp_owner: str | None = None,
) -> VideoResult:
    """The video's result from its chunks' (in chunk order); writes its files when every chunk succeeded."""
    started = time.perf_counter()
    keep = config.save_intermediate_results
    summaries = [_summary(c, r, keep) for c, r in zip(chunks, results)]
    base = {"video": ref.display, "name": ref.name, "attempts": max(r.attempts for r in results), "total_frames": chunks[-1].end,
            "video_fps": chunks[0].fps}
    split = SplitSummary(split_seconds=config.split_seconds or 0.0, overlap_seconds=config.split_overlap_seconds, chunks=summaries)
    bad = [(c, r) for c, r in zip(chunks, results) if not r.ok]
    if bad:
        _remove_chunk_files(out_dir, results, keep=keep)
        chunk, failed = bad[0]
        cancelled = any(r.outcome is VideoOutcome.CANCELLED for _, r in bad)
        others = sum(1 for _, r in bad[1:] if r.error_kind != "skipped")
        more = f" (and {others} more chunks)" if others else ""
        named = chunk.span() in (failed.error or "")  # the chunk reader's errors name the chunk and the time already
        error = "cancelled" if cancelled else f"{failed.error if named else f'{chunk.span()}: {failed.error}'}{more}"
        return VideoResult(
            **base, outcome=VideoOutcome.CANCELLED if cancelled else VideoOutcome.FAILED, error=error,
            error_kind="cancelled" if cancelled else failed.error_kind, split=split,
            frames=sum(c.frames for c, r in zip(chunks, results) if r.ok),
        )
    try:
        result = _stitch(ref, config, chunks, results, out_dir, names=names, temp_owner=temp_owner, base=base, split=split, started=started)
    except Exception as exc:  # noqa: BLE001 - a video's failure must not end the job
        message = str(exc) if isinstance(exc, VidfleetError) else f"{ref.display}: stitching failed: {type(exc).__name__}: {exc}"
        return VideoResult(**base, outcome=VideoOutcome.FAILED, error=message, error_kind="stitch", split=split)
    _remove_chunk_files(out_dir, results, keep=False, but_tracks=config.visualize)  # the parts are drawn from the tracks
    return result


def _stitch(
    ref: VideoRef, config: JobConfig, chunks: Sequence[Chunk], results: Sequence[VideoResult], out_dir: Path, *,
    names: dict[int, str], temp_owner: str | None, base: dict, split: SplitSummary, started: float,
) -> VideoResult:
    staged = {"tracks": StagedFile(out_dir, ref.name, TRACKS_SUFFIX, owner=temp_owner),
              "detections": StagedFile(out_dir, ref.name, DETECTIONS_SUFFIX, owner=temp_owner)}
    if config.counting:
        staged["events"] = StagedFile(out_dir, ref.name, EVENTS_SUFFIX, owner=temp_owner)
    replay = EventReplay(config) if config.counting else None
    detections = 0
    try:
        with open(staged["tracks"].temp, "w", encoding="utf-8") as out:
            space, boundaries, rows, ids = stitch_tracks(chunks, [out_dir / r.outputs.tracks for r in results], out)  # type: ignore[operator]
        with open(staged["detections"].temp, "w", encoding="utf-8") as out:
            for chunk, result in zip(chunks, results):
                detections += copy_owned_lines(out_dir / result.outputs.detections, chunk, out)  # type: ignore[operator]
        if replay is not None:
            with open(staged["events"].temp, "w", encoding="utf-8") as out:
                for chunk, result, mapping in zip(chunks, results, space.maps):
                    for event in owned_events(out_dir / result.outputs.events, chunk):  # type: ignore[operator]
                        kept = replay.take(event, mapping)
                        if kept is not None:
                            out.write(json.dumps(kept, separators=(",", ":")) + "\n")
        if config.visualize:
            write_id_maps(out_dir, ref.name, space.maps)  # for drawing the chunks' parts (vidfleet_detector.split.render)
        for file in staged.values():
            file.commit()
    except BaseException:
        for file in staged.values():
            file.discard(keep_partial=False)
        raise
    stitch_s = time.perf_counter() - started
    split = split.model_copy(update={
        "boundaries": boundaries, "stitch_seconds": round(stitch_s, 4),
        "events_dropped": replay.dropped if replay is not None else 0,
    })
    seconds = sum(r.seconds for r in results) + stitch_s
    frames = chunks[-1].end
    warnings = [w for w in (r.warning for r in results) if w]
    return VideoResult(
        **base,
        outcome=VideoOutcome.SUCCEEDED,
        frames=frames,
        frames_processed=len(range(0, frames, config.skip_frames)),
        width=results[0].width,
        height=results[0].height,
        detections=detections,
        tracks=len(ids),
        track_rows=rows,
        seconds=round(seconds, 4),
        fps=round(frames / seconds, 2) if seconds > 0 else 0.0,
        warning="; ".join(warnings) or None,
        outputs=VideoOutputs(**{k: str(f.final.relative_to(out_dir)) for k, f in staged.items()}),
        counts=replay.counts if replay is not None else None,
        split=split,
    )


def _summary(chunk: Chunk, result: VideoResult, keep: bool) -> ChunkSummary:
    outputs = {k: v for k, v in result.outputs.model_dump().items() if v} if keep else {}
    return ChunkSummary(
        index=chunk.index, start_s=round(chunk.start_seconds, 3), end_s=round(chunk.end_seconds, 3), frames=chunk.frames,
        frames_read=result.frames, outcome=result.outcome.value, error=result.error, seconds=result.seconds,
        worker=result.worker, attempts=result.attempts, outputs=outputs,
    )


def _remove_chunk_files(out_dir: Path, results: Sequence[VideoResult], *, keep: bool, but_tracks: bool = False) -> None:
    """A chunk's files once stitched (or, for a failed video, unless save_intermediate_results keeps them)."""
    if keep:
        return
    for result in results:
        for kind, relative in result.outputs.model_dump().items():
            if relative and not (but_tracks and kind == "tracks"):
                (out_dir / relative).unlink(missing_ok=True)


def process_split(
    ref: VideoRef, config: JobConfig, runner: ModelRunner, out_dir: Path, chunks: Sequence[Chunk], *,
    progress: ProgressSink | None = None,
) -> VideoResult:
    """`vidfleet process` for a split video: every chunk in turn, in this process, then the stitch."""
    from vidfleet_detector.pipeline import process_video  # noqa: PLC0415 - the pipeline imports this package

    started = time.perf_counter()
    results = []
    for chunk in chunks:
        sink = _ChunkProgress(progress, chunk) if progress is not None else None
        result = process_video(ref, config, runner, out_dir, chunk=chunk, progress=sink)
        results.append(result)
        if not result.ok:
            break  # the video fails with this chunk; the rest would be thrown away
    results += [VideoResult(video=ref.display, name=ref.name, outcome=VideoOutcome.FAILED, error="not run: an earlier chunk failed",
                            error_kind="skipped") for _ in chunks[len(results):]]
    stitched = stitch_video(ref, config, chunks, results, out_dir, names=runner.names)
    if config.visualize and stitched.ok:
        renders = [render_chunk(ref, config, chunk, out_dir, names=runner.names, width=stitched.width or 0, height=stitched.height or 0,
                                events=stitched.outputs.events) for chunk in chunks]
        stitched = join_video(stitched, renders, out_dir, name=ref.name, keep=config.save_intermediate_results)
    seconds = time.perf_counter() - started
    return stitched.model_copy(update={"seconds": round(seconds, 4), "fps": round(stitched.frames / seconds, 2) if seconds > 0 else 0.0})


class _ChunkProgress:
    """A chunk's progress as the video's: the frames it owns read so far, after the ones before it."""

    def __init__(self, video: ProgressSink, chunk: Chunk) -> None:
        self.video, self.chunk = video, chunk

    def start(self, ref: VideoRef, total_frames: int | None) -> None:
        pass

    def advance(self, frames_read: int) -> None:
        lead_in = self.chunk.start - self.chunk.read_from
        self.video.advance(self.chunk.start + max(0, min(self.chunk.frames, frames_read - lead_in)))

    def finish(self, result: VideoResult) -> None:
        if result.ok:
            self.video.advance(self.chunk.end)
