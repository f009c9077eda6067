"""`capture()`: one source into one Redis frame stream, until stopped — the body of the capture task.

The calling thread supervises: it takes the stream's lock, opens the source (a source that cannot
be opened at the first attempt ends the capture as "failed", with its reason in the status hash),
runs the pipeline (reader, encoders, writer threads) and, every tick, checks `should_stop`, the
stop key and the heartbeat: status hash, lock renewal, capture fps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidfleet_common.contracts import RedisKeys
from vidfleet_common.errors import InputError, VideoOpenError
from vidfleet_common.redis_connection import report_failure
from vidfleet_common.streams import HEARTBEAT_SECONDS, StreamSpec
from vidfleet_capture.metrics import CaptureMetrics, StreamMetrics
from vidfleet_capture.pipeline import CaptureStats, Encoding, Pipeline
from vidfleet_capture.rate import FrameGate
from vidfleet_capture.sources import CAMERA_URL_SCHEMES, open_source, parse_source, source_fps
from vidfleet_capture.status import ENDED_TTL_SECONDS, FAILED_TTL_SECONDS, STOPPED_TTL_SECONDS, FpsMeter, StatusBoard
from vidfleet_capture.yuv import image_size

log = logging.getLogger("vidfleet.capture")

TICK_SECONDS = 0.1  # should_stop and the pipeline's end are noticed this fast
STOP_CHECK_SECONDS = 0.5  # the stop key is read this often (a heartbeat is 2 s)
DEFAULT_ENCODERS = 2


@dataclass(frozen=True)
class CaptureResult:
    """What a capture did: the task's return value (JSON)."""

    stream: str
    state: str  # "stopped" (stop key, should_stop), "ended" (count or end of file), "failed", "duplicate"
    reason: str = ""  # why it ended: stop, count, end of file, lost lock, error, ...
    error: str = ""
    frames: int = 0
    reconnects: int = 0
    seq: int = -1
    owner: str = ""  # for "duplicate": the worker that captures the stream

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def capture(
    spec: StreamSpec,
    redis: Any,
    keys: RedisKeys,
    *,
    worker: str,
    should_stop: Callable[[], bool] = lambda: False,
    metrics: CaptureMetrics | None = None,
    maxlen: int | None = None,
    input_roots: Sequence[Path] = (),
    url_schemes: Iterable[str] = CAMERA_URL_SCHEMES,
    encoders: int = DEFAULT_ENCODERS,
) -> CaptureResult:
    """Capture `spec.source` into `keys.frames(spec.name)`; returns when stopped, finished or failed.

    `maxlen` overrides the stream length derived from the spec (fps x retention seconds).
    """
    name = spec.name
    board = StatusBoard(redis, keys, name, worker)
    owner = board.acquire()
    if owner is not None:
        log.warning("stream %s: already captured by %s; this capture (%s) exits", name, owner, worker)
        return CaptureResult(name, "duplicate", reason="already captured", owner=owner)
    stream_metrics = metrics.for_stream(name) if metrics else None
    try:
        return _run(spec, redis, keys, board, worker, should_stop, stream_metrics, maxlen, input_roots, url_schemes, encoders)
    finally:
        try:
            board.release()
        except Exception as exc:  # noqa: BLE001 - the lock expires by itself
            log.warning("stream %s: lock not released (%s); it expires in seconds", name, type(exc).__name__)
        if stream_metrics:
            stream_metrics.fps.set(0)


def _run(
    spec: StreamSpec, redis: Any, keys: RedisKeys, board: StatusBoard, worker: str, should_stop: Callable[[], bool],
    metrics: StreamMetrics | None, maxlen: int | None, input_roots: Sequence[Path], url_schemes: Iterable[str], encoders: int,
) -> CaptureResult:
    name = spec.name
    board.publish(state="starting")
    if board.stop_requested() or should_stop():
        board.publish(state="stopped", ttl=STOPPED_TTL_SECONDS)
        return CaptureResult(name, "stopped", reason="stop requested before start")
    encoding = Encoding(spec.codec, spec.quality, spec.width)
    try:
        source = parse_source(spec.source, input_roots=input_roots, url_schemes=url_schemes)
        capture_, first = open_source(source, yuv=encoding.takes_planes)
    except (InputError, VideoOpenError) as exc:
        kind = "input" if isinstance(exc, InputError) else "open"
        if metrics:
            metrics.error("open")  # refused or unreadable: either way the source did not open
        log.error("stream %s: capture failed: %s", name, exc)
        board.publish(state="failed", error=str(exc), ttl=FAILED_TTL_SECONDS)
        return CaptureResult(name, "failed", reason=kind, error=str(exc))

    fps_in = source_fps(capture_)
    width, height = image_size(first)
    stats = CaptureStats(state="running", source_fps=fps_in, width=width, height=height)
    gate = FrameGate(wanted_fps=spec.fps, source_fps=fps_in, realtime=spec.realtime, live=source.is_live)
    length = maxlen or spec.maxlen(gate.out_fps)
    pipeline = Pipeline(
        source=source, capture=capture_, first_image=first, gate=gate,
        encoding=encoding, redis=redis, key=keys.frames(name), maxlen=length,
        stats=stats, metrics=metrics, count=spec.count, loop=spec.loop, encoders=encoders,
    ).start()
    log.info(
        "stream %s: capturing %s (%dx%d, source %s fps, out %s fps, %s) into %s, MAXLEN ~%d, worker %s",
        name, source.display, stats.width, stats.height, _fps(fps_in), _fps(gate.out_fps),
        "real time" if gate.paced else "as fast as possible", keys.frames(name), length, worker,
    )
    reason = _supervise(pipeline, board, stats, metrics, should_stop, name)
    pipeline.stop()
    pipeline.join()
    reason = stats.ended if reason == "finished" else reason
    state, error, ttl = "stopped", "", STOPPED_TTL_SECONDS
    if reason in ("end of file", "count"):
        # A finite source played to its end: the stream is done, and the reconciler must not replay it.
        state, ttl = "ended", ENDED_TTL_SECONDS
    if stats.writer_error is not None:
        state, reason, error, ttl = "failed", "redis", f"appending to Redis failed: {type(stats.writer_error).__name__}", FAILED_TTL_SECONDS
    elif stats.ended == "error":
        state, error, ttl = "failed", stats.error, FAILED_TTL_SECONDS
    if reason != "lost lock":
        _publish(board, stats, state=state, error=error, fps=0.0, ttl=ttl)
    log.info("stream %s: %s (%s) after %d frames, %d reconnects", name, state, reason, stats.appended, stats.reconnects)
    return CaptureResult(name, state, reason=reason, error=error, frames=stats.appended, reconnects=stats.reconnects, seq=stats.seq)


def _supervise(
    pipeline: Pipeline, board: StatusBoard, stats: CaptureStats, metrics: StreamMetrics | None,
    should_stop: Callable[[], bool], name: str,
) -> str:
    """Tick until the pipeline ends or must stop; returns the reason ("finished" when it ended by itself)."""
    meter = FpsMeter()
    now = time.monotonic()
    next_beat, next_stop_check = now, now + STOP_CHECK_SECONDS
    published_state = ""
    fps = 0.0
    while True:
        pipeline.join(TICK_SECONDS)
        if pipeline.done:
            return "finished"
        now = time.monotonic()
        fps = meter.sample(stats.appended, now)
        if metrics:
            metrics.fps.set(fps)
        if should_stop():
            return "stop"
        try:
            if now >= next_stop_check:
                next_stop_check = now + STOP_CHECK_SECONDS
                if board.stop_requested():
                    return "stop key"
            if now >= next_beat or stats.state != published_state:
                next_beat = now + HEARTBEAT_SECONDS
                if not board.renew():
                    log.error("stream %s: another capture holds the stream now; this one (%s) stops", name, board.worker)
                    return "lost lock"
                _publish(board, stats, state=stats.state, error=stats.error, fps=fps)
                published_state = stats.state
        except Exception as exc:  # noqa: BLE001 - Redis away past the client's retries: keep capturing, try again
            if metrics:
                metrics.error("redis")
            report_failure(exc, log, f"stream {name}: heartbeat failed")


def _publish(board: StatusBoard, stats: CaptureStats, *, state: str, error: str, fps: float, ttl: int | None = None) -> None:
    kwargs: dict[str, Any] = {} if ttl is None else {"ttl": ttl}
    try:
        board.publish(
            state=state, error=error, fps=fps, frames=stats.appended, reconnects=stats.reconnects, seq=stats.seq, ts=stats.ts, **kwargs
        )
    except Exception as exc:  # noqa: BLE001
        report_failure(exc, log, f"stream {board.stream}: status not written")


def _fps(value: float | None) -> str:
    return f"{value:g}" if value else "?"
