"""The capture pipeline: a reader, a few encoders and a writer, each a thread, joined by bounded queues.

    reader ──(seq, ts, image)──▶ [raw] ──▶ encoders ×K ──(seq, fields)──▶ [encoded] ──▶ writer (back in seq order)

FFmpeg (through PyAV or OpenCV) and libjpeg-turbo release the GIL while they decode and encode, so
decoding one frame and JPEG-encoding the previous ones run on separate cores. JPEG frames stay in the
decoder's Y'CbCr from reader to encoder (yuv.py): no colour conversion on the way. Any free encoder
takes the next frame (no head-of-line blocking behind a slow one); the writer puts frames back in
sequence order and appends whatever is ready in one pipelined round trip (`XADD … MAXLEN ~ n` per
frame, approximate trimming). Every queue is bounded, by frames and by bytes of raw image; shutdown is
a sentinel per encoder that the reader sends after its last frame and that flows through to the
writer, so every frame given a sequence number is appended (or the writer failed, and says so).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidfleet_capture.opencv import cv2
from vidfleet_common.errors import VideoOpenError
from vidfleet_common.streams import FrameMessage
from vidfleet_capture.metrics import StreamMetrics
from vidfleet_capture.rate import FrameGate
from vidfleet_capture.sources import Image, Source, VideoReader, open_source
from vidfleet_capture.yuv import YuvImage, image_size

log = logging.getLogger("vidfleet.capture")

_END = object()
RAW_QUEUE_MAX_FRAMES = 8
RAW_QUEUE_MAX_BYTES = 24 << 20  # decoded frames waiting for an encoder: 8 up to 720p, 3 at 1080p, 2 at 4K
ENCODED_QUEUE_FRAMES = 32
MAX_BATCH_FRAMES = 64
MAX_BATCH_BYTES = 8 << 20
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
VANISHED_CHECK_SECONDS = 0.5  # a file source that disappears is a camera unplugged


@dataclass
class CaptureStats:
    """Counters the threads update and the supervisor reads (plain ints: atomic under the GIL)."""

    state: str = "starting"
    error: str = ""
    read: int = 0
    encoded: int = 0
    appended: int = 0
    reconnects: int = 0
    seq: int = -1  # last appended
    ts: int = 0  # capture timestamp of the last appended frame
    width: int = 0
    height: int = 0
    source_fps: float | None = None
    ended: str = ""  # why the reader stopped: "stop", "count", "end of file", "error"
    writer_error: BaseException | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Encoding:
    codec: str  # "jpg" / "png"
    quality: int = 85
    width: int | None = None

    @property
    def takes_planes(self) -> bool:
        """JPEG frames are encoded from the decoder's Y'CbCr planes; other codecs need BGR."""
        return self.codec == "jpg"

    @property
    def params(self) -> list[int]:
        if self.codec == "jpg":
            return [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)]
        return [cv2.IMWRITE_PNG_COMPRESSION, 1]

    def encode(self, seq: int, ts: int, image: Image) -> dict[str, Any] | None:
        width, height = image_size(image)
        if self.width and width != self.width:
            width, height = self.width, max(2, round(height * self.width / width))
            image = image.resized(width, height) if isinstance(image, YuvImage) else _resized(image, width, height)
        if isinstance(image, YuvImage):  # sources are opened as planes only for JPEG (`takes_planes`)
            return FrameMessage(seq, ts, width, height, self.codec, image.jpeg(self.quality)).fields()
        ok, buffer = cv2.imencode(f".{self.codec}", image, self.params)
        if not ok:
            return None
        return FrameMessage(seq, ts, width, height, self.codec, buffer.tobytes()).fields()


def _resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


class Pipeline:
    """Runs one source into one frame stream until the source ends, `count` frames, or `stop()`."""

    def __init__(
        self,
        *,
        source: Source,
        capture: VideoReader,
        first_image: Image,
        gate: FrameGate,
        encoding: Encoding,
        redis: Any,
        key: str,
        maxlen: int,
        stats: CaptureStats,
        metrics: StreamMetrics | None = None,
        count: int | None = None,
        loop: bool = False,
        encoders: int = 2,
    ) -> None:
        self.source = source
        self.gate = gate
        self.encoding = encoding
        self.redis = redis
        self.key = key
        self.maxlen = maxlen
        self.stats = stats
        self.metrics = metrics
        self.count = count
        self.loop = loop
        self._capture: VideoReader | None = capture
        self._first: Image | None = first_image
        self._stop = threading.Event()
        self._encoders = max(1, encoders)
        frame_bytes = max(1, first_image.nbytes)
        depth = max(2, min(RAW_QUEUE_MAX_FRAMES, RAW_QUEUE_MAX_BYTES // frame_bytes))
        self._raw: queue.Queue[Any] = queue.Queue(depth)
        self._encoded: queue.Queue[Any] = queue.Queue(ENCODED_QUEUE_FRAMES)
        self._threads = [threading.Thread(target=self._read, name="capture-read", daemon=True)]
        self._threads += [
            threading.Thread(target=self._encode, name=f"capture-encode-{i}", daemon=True) for i in range(self._encoders)
        ]
        self._threads.append(threading.Thread(target=self._write, name="capture-write", daemon=True))

    # --- control -------------------------------------------------------------------------------

    def start(self) -> Pipeline:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Ask the reader to stop; frames already read are still encoded and appended."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every thread; True when all have finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    @property
    def done(self) -> bool:
        return not self._threads[-1].is_alive()

    # --- reader --------------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            self._read_frames()
        except Exception as exc:  # noqa: BLE001 - reported through the status, never a crash
            self.stats.ended = "error"
            self.stats.error = f"{self.source.display}: reading failed: {exc}"
            log.exception("stream %s: reader failed", self.key)
            if self.metrics:
                self.metrics.error("read")
        finally:
            if self._capture is not None:
                self._capture.release()
                self._capture = None
            for _ in range(self._encoders):
                self._raw.put(_END)

    def _read_frames(self) -> int:
        """Read, drop, pace and dispatch frames; returns the next sequence number."""
        seq = 0
        live = self.source.is_live
        raw = self._raw
        last_check = time.monotonic()
        while not self._stop.is_set():
            if self.count is not None and seq >= self.count:
                self.stats.ended = "count"
                return seq
            image = self._next_image()
            if image is None:
                if self._stop.is_set():
                    break
                if self.source.is_file and self.source.exists() and not self.loop:
                    self.stats.ended = "end of file"
                    return seq
                lost = not (self.source.is_file and self.source.exists())
                if not self._reopen(lost=lost):
                    break
                continue
            if not self.gate.wait_turn(self._stop):
                break
            item = (seq, time.time_ns(), image)
            if live:
                try:  # a camera does not wait: drop the frame rather than fall behind
                    raw.put_nowait(item)
                except queue.Full:
                    continue
            else:
                raw.put(item)
            seq += 1
            if self.source.is_file and time.monotonic() - last_check >= VANISHED_CHECK_SECONDS:
                last_check = time.monotonic()
                if not self.source.exists():
                    log.warning("stream %s: %s vanished", self.key, self.source.display)
                    if not self._reopen(lost=True):
                        break
        self.stats.ended = self.stats.ended or "stop"
        return seq

    def _next_image(self) -> Image | None:
        """The next frame to keep (dropped ones are grabbed, not converted); None when the source gave none."""
        if self._first is not None:  # read by open_source: source frame 0 of this opening
            image, self._first = self._first, None
            self._count_read()
            if self.gate.keep():
                return image
        capture = self._capture
        if capture is None:
            return None
        while not self._stop.is_set():
            if self.gate.keep():
                ok, image = capture.read()
                if not ok or image is None:
                    return None
                self._count_read()
                return image
            if not capture.grab():
                return None
            self._count_read()
        return None

    def _count_read(self) -> None:
        self.stats.read += 1
        if self.metrics:
            self.metrics.read.inc()

    def _reopen(self, *, lost: bool) -> bool:
        """Open the source again: at once for a looping file, with backoff for a lost one. False when stopping."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        if not lost:
            try:
                self._capture, self._first = open_source(self.source, yuv=self.encoding.takes_planes)
                return True
            except VideoOpenError:
                pass  # it was there a moment ago: treat as lost
        self.stats.state = "reconnecting"
        self.stats.error = f"{self.source.display}: source lost"
        log.warning("stream %s: %s lost; reconnecting", self.key, self.source.display)
        if self.metrics:
            self.metrics.error("read")
        delay = BACKOFF_FIRST_SECONDS
        while not self._stop.wait(delay):
            try:
                self._capture, self._first = open_source(self.source, yuv=self.encoding.takes_planes)
            except (VideoOpenError, cv2.error) as exc:
                self.stats.error = str(exc)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            self.stats.reconnects += 1
            self.stats.error = ""
            self.stats.state = "running"
            if self.metrics:
                self.metrics.reconnects.inc()
            self.gate.resync()
            log.info("stream %s: %s is back (reconnect %d)", self.key, self.source.display, self.stats.reconnects)
            return True
        return False

    # --- encoders ------------------------------------------------------------------------------

    def _encode(self) -> None:
        raw, encoded = self._raw, self._encoded
        encoding, stats, metrics = self.encoding, self.stats, self.metrics
        while True:
            item = raw.get()
            if item is _END:
                encoded.put(_END)
                return
            seq, ts, image = item
            del item
            try:
                fields = encoding.encode(seq, ts, image)
            except Exception as exc:  # noqa: BLE001 - one bad frame is skipped; the stream goes on
                log.warning("stream %s: frame %d not encoded: %s", self.key, seq, exc)
                fields = None
            del image
            if fields is None:
                if metrics:
                    metrics.error("encode")
            else:
                stats.encoded += 1
                if metrics:
                    metrics.encoded.inc()
            encoded.put((seq, fields))  # None: skipped, the writer moves past it

    # --- writer --------------------------------------------------------------------------------

    def _write(self) -> None:
        encoded = self._encoded
        pending: dict[int, dict[str, Any] | None] = {}  # encoded out of order, waiting for an earlier frame
        next_seq = 0
        ends = 0
        failed = False
        while ends < self._encoders:
            batch: list[dict[str, Any]] = []
            size = 0
            item = encoded.get()
            while True:  # everything encoded by now goes in one round trip; nothing waits for a batch to fill
                if item is _END:
                    ends += 1
                else:
                    pending[item[0]] = item[1]
                    while next_seq in pending:
                        fields = pending.pop(next_seq)
                        next_seq += 1
                        if fields is not None:
                            batch.append(fields)
                            size += len(fields["data"])
                if ends == self._encoders or len(batch) >= MAX_BATCH_FRAMES or size >= MAX_BATCH_BYTES:
                    break
                try:
                    item = encoded.get_nowait()
                except queue.Empty:
                    break
            if batch and not failed:
                failed = not self._append(batch)
        if failed:
            self.stats.ended = self.stats.ended or "error"

    def _append(self, batch: list[dict[str, Any]]) -> bool:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for fields in batch:
                pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - Redis gone past the client's retries (or a bug): the capture ends
            self.stats.writer_error = exc
            if self.metrics:
                self.metrics.error("redis")
            log.error("stream %s: appending to Redis failed: %s", self.key, type(exc).__name__)
            self._stop.set()  # the reader stops; the writer drains what is queued and ends
            return False
        last = batch[-1]
        self.stats.appended += len(batch)
        self.stats.seq = int(last["seq"])
        self.stats.ts = int(last["ts"])
        if self.metrics:
            self.metrics.appended.inc(len(batch))
        return True
