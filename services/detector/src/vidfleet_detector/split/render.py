"""The annotated video of a split video: each chunk's part drawn on its own (in parallel on the fleet),
then the parts joined without re-encoding.

Ids drawn must be the stitched ones, so drawing waits for the stitch; it then needs no model. The stitch
writes each chunk's id map beside the outputs (`<video>.chunk-ids.json`); a chunk's part is its own frames
with its own tracks relabelled, and the counting overlay starts from the counts of the stitched events
before the chunk. The parts are MP4s written alike (one writer, one frame rate, one size): joining them is
copying their packets with shifted timestamps (PyAV remux).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import av

from vidfleet_common.chunks import Chunk, chunk_unit, render_unit
from vidfleet_common.errors import VidfleetError
from vidfleet_common.inputs import VideoRef
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import VideoOutcome, VideoOutputs, VideoResult
from vidfleet_detector.analytics.drawing import draw_counting
from vidfleet_detector.analytics.geometry import resolve
from vidfleet_detector.drawing import draw_tracks
from vidfleet_detector.outputs import ANNOTATED_SUFFIX, TRACKS_SUFFIX, AnnotatedWriter, OutputError, StagedFile
from vidfleet_detector.split.reader import ChunkReader
from vidfleet_detector.split.stitch import ChunkTracks, EventReplay

IDS_SUFFIX = ".chunk-ids.json"


def ids_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}{IDS_SUFFIX}"


def write_id_maps(out_dir: Path, name: str, maps: Sequence[dict[int, int]]) -> None:
    path = ids_path(out_dir, name)
    temp = path.with_name(f".tmp-{path.name}")
    temp.write_text(json.dumps([{str(k): v for k, v in m.items()} for m in maps]), encoding="utf-8")
    temp.replace(path)


def render_chunk(
    ref: VideoRef, config: JobConfig, chunk: Chunk, out_dir: Path, *, names: dict[int, str], width: int, height: int,
    events: str | None, temp_owner: str | None = None,
) -> VideoResult:
    """Draw chunk `chunk`'s own frames with the stitched ids into `<video>.renderNNN.annotated.mp4`."""
    started = time.perf_counter()
    unit = render_unit(ref.name, chunk.index)
    staged = StagedFile(out_dir, unit, ANNOTATED_SUFFIX, owner=temp_owner)
    frames = 0
    try:
        mapping = {int(k): v for k, v in json.loads(ids_path(out_dir, ref.name).read_text(encoding="utf-8"))[chunk.index].items()}
        tracks = ChunkTracks.read(out_dir / f"{chunk_unit(ref.name, chunk.index)}{TRACKS_SUFFIX}")
        geometry = resolve(config.lines, config.zones, width, height) if config.counting else None
        replay = EventReplay(config) if config.counting else None
        pending: list[dict] = []
        if replay is not None and events:
            for line in (out_dir / events).read_text(encoding="utf-8").splitlines():
                event = json.loads(line)
                if event["frame"] <= chunk.start:
                    replay.take(event, {})  # the counts when the chunk's first frame is drawn
                else:
                    pending.append(event)
        writer = AnnotatedWriter(staged, fps=chunk.fps / config.skip_frames, width=width, height=height)
        reader = ChunkReader(ref.source, chunk, stride=config.skip_frames, display=ref.display)
        cursor = 0
        try:
            for frame in reader:
                if frame.index < chunk.start:
                    continue
                number = frame.index + 1
                image = frame.image
                rows = tracks.by_frame.get(number)
                if rows is not None and len(rows):
                    rows = rows.copy()
                    rows[:, 4] = [mapping[int(t)] for t in rows[:, 4]]
                    image = draw_tracks(image, rows, names)
                if replay is not None and geometry is not None:
                    while cursor < len(pending) and pending[cursor]["frame"] <= number:
                        replay.take(pending[cursor], {})
                        cursor += 1
                    image = draw_counting(image, geometry, replay.counts)
                writer.write(image)
                frames += 1
        finally:
            reader.close()
            writer.close()
        staged.commit()
    except Exception as exc:  # noqa: BLE001 - the video fails with this chunk's reason
        staged.discard(keep_partial=False)
        message = str(exc) if isinstance(exc, VidfleetError) else f"{ref.display}: {chunk.span()}: drawing failed: {type(exc).__name__}: {exc}"
        return VideoResult(video=ref.display, name=unit, outcome=VideoOutcome.FAILED, error=message, error_kind=getattr(exc, "kind", "render"),
                           seconds=round(time.perf_counter() - started, 4))
    return VideoResult(
        video=ref.display, name=unit, outcome=VideoOutcome.SUCCEEDED, frames=frames, frames_processed=frames, width=width, height=height,
        seconds=round(time.perf_counter() - started, 4), outputs=VideoOutputs(annotated=str(staged.final.relative_to(out_dir))),
    )


def join_parts(parts: Sequence[Path], staged: StagedFile) -> None:
    """Concatenate MP4 parts written alike into `staged`'s temporary file, copying packets (no re-encoding)."""
    with av.open(str(staged.temp), "w") as out:
        stream = None
        offset = 0
        for part in parts:
            with av.open(str(part)) as source:
                video = source.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(video)
                elif video.time_base != stream.time_base or video.codec_context.name != stream.codec_context.name:
                    raise OutputError(f"{part.name}: not written like the first part (codec or time base differs); cannot join")
                end = offset
                for packet in source.demux(video):
                    if packet.dts is None:
                        continue  # the demuxer's flush packet
                    packet.pts += offset
                    packet.dts += offset
                    end = max(end, packet.pts + (packet.duration or 0))
                    packet.stream = stream
                    out.mux(packet)
                offset = end


def join_video(stitched: VideoResult, renders: Sequence[VideoResult], out_dir: Path, *, name: str, keep: bool,
               temp_owner: str | None = None) -> VideoResult:
    """The video's result: the stitched one with the annotated video joined from the chunks' parts."""
    started = time.perf_counter()
    failed = next((r for r in renders if not r.ok), None)
    staged = StagedFile(out_dir, name, ANNOTATED_SUFFIX, owner=temp_owner)
    if failed is None:
        try:
            join_parts([out_dir / r.outputs.annotated for r in renders], staged)  # type: ignore[operator]
            staged.commit()
        except Exception as exc:  # noqa: BLE001
            staged.discard(keep_partial=False)
            failed = VideoResult(video=stitched.video, name=name, outcome=VideoOutcome.FAILED, error_kind="render",
                                 error=str(exc) if isinstance(exc, VidfleetError) else f"{stitched.video}: joining the annotated parts failed: {exc}")
    remove_render_files(out_dir, name, renders, stitched)
    render_s = sum(r.seconds for r in renders) + time.perf_counter() - started
    split = stitched.split.model_copy(update={"render_seconds": round(render_s, 4)}) if stitched.split else None
    if failed is not None:
        if not keep:
            for relative in stitched.outputs.model_dump().values():
                if relative:
                    (out_dir / relative).unlink(missing_ok=True)
        return stitched.model_copy(update={"name": name, "outcome": VideoOutcome.FAILED, "error": failed.error, "error_kind": failed.error_kind,
                                           "outputs": VideoOutputs(), "split": split, "counts": None})
    outputs = stitched.outputs.model_copy(update={"annotated": str(staged.final.relative_to(out_dir))})
    seconds = stitched.seconds + render_s
    return stitched.model_copy(update={"name": name, "outputs": outputs, "split": split, "seconds": round(seconds, 4),
                                       "fps": round(stitched.frames / seconds, 2) if seconds > 0 else 0.0})


def remove_render_files(out_dir: Path, name: str, renders: Sequence[VideoResult], stitched: VideoResult) -> None:
    """The parts, the id maps and the chunks' tracks the parts were drawn from."""
    for result in renders:
        if result.outputs.annotated:
            (out_dir / result.outputs.annotated).unlink(missing_ok=True)
    ids_path(out_dir, name).unlink(missing_ok=True)
    for chunk in stitched.split.chunks if stitched.split else []:
        (out_dir / f"{chunk_unit(name, chunk.index)}{TRACKS_SUFFIX}").unlink(missing_ok=True)
