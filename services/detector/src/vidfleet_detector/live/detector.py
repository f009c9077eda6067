"""The live detector loop: leases, reads frames with the consumer group, batches them across its
streams through one model, runs one SORT per stream, appends tracks and acknowledges.

Policy per stream when it falls behind: `latest` keeps only the newest frames of each read and
acknowledges the rest unprocessed (counted as skipped); `all` processes every frame in order.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from vidfleet_common.contracts import RedisKeys
from vidfleet_common.errors import ConfigError, InputError
from vidfleet_common.job_config import JobConfig
from vidfleet_common.redis_connection import report_failure
from vidfleet_common.streams import CONSUMER_GROUP, FrameMessage, StreamSpec, Track, wanted_streams
from vidfleet_detector.analytics.live import LiveCounting
from vidfleet_detector.live.leases import LeaseLost, Leases
from vidfleet_detector.model_runner import Detections, ModelRunner
from vidfleet_detector.tracking import Sort

log = logging.getLogger("vidfleet.detector.live")

READ_COUNT = 256  # entries per stream per read: a `latest` stream far behind catches up this fast
STATUS_TTL_SECONDS = 10
# Between lease renewals (every TTL/3), a detector under its share looks for free streams this often: a
# dead detector's streams are taken within about one TTL of its death, not TTL + TTL/3.
ACQUIRE_EVERY_S = 0.5
# A detector silent this many TTLs is forgotten: its heartbeat entry and its (emptied) consumer are removed.
FORGET_AFTER_TTLS = 10


@dataclass
class _Stream:
    spec: StreamSpec
    tracker: Sort
    conf: float
    classes: frozenset[int] | None
    backlog: bool = True  # first read this detector's pending entries (claimed from a dead holder)
    counting: LiveCounting | None = None
    counting_error: str | None = None
    processed: int = 0
    skipped: int = 0
    fps: float = 0.0
    latency_ms: float = 0.0
    _window: list[float] = field(default_factory=list)

    def note_frames(self, count: int, now: float) -> None:
        self._window = [t for t in self._window if now - t < 2.0] + [now] * count
        self.fps = len(self._window) / 2.0


@dataclass
class _Frame:
    stream: _Stream
    entry_id: Any
    message: FrameMessage
    image: np.ndarray


class LiveDetector:
    def __init__(
        self,
        redis: Any,
        keys: RedisKeys,
        runner: ModelRunner,
        *,
        holder: str,
        lease_ttl_s: float = 10.0,
        max_streams: int = 32,
        batch: int = 8,
        block_ms: int = 50,
        metrics: Any = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.runner = runner
        self.holder = holder
        self.leases = Leases(redis, keys, holder, int(lease_ttl_s * 1000))
        self.lease_ttl_s = lease_ttl_s
        self.max_streams = max_streams
        self.batch = batch
        self.block_ms = block_ms
        self.metrics = metrics
        self.streams: dict[str, _Stream] = {}
        self._next_maintenance = 0.0
        self._next_acquire = 0.0

    # the loop
    def run(self, stop: threading.Event) -> None:
        log.info("live detector %s: lease TTL %.0fs, up to %d streams, batch %d", self.holder, self.lease_ttl_s, self.max_streams, self.batch)
        try:
            while not stop.is_set():
                try:
                    if self.step() == 0 and not self.streams:
                        stop.wait(0.2)
                except Exception as exc:  # noqa: BLE001 - Redis restarting: keep the streams, retry
                    report_failure(exc, log, "live detector")
                    stop.wait(1.0)
        finally:
            self.close()

    def step(self) -> int:
        """One cycle: maintain leases when due, read, detect, track, publish. Returns frames processed."""
        now = time.monotonic()
        if now >= self._next_maintenance:
            self.maintain()
            self._next_maintenance = now + self.lease_ttl_s / 3
            self._next_acquire = now + ACQUIRE_EVERY_S
        elif now >= self._next_acquire and len(self.streams) < self.max_streams:
            self._acquire({spec.name: spec for spec in wanted_streams(self.redis, self.keys.stream_registry())})
            self._next_acquire = now + ACQUIRE_EVERY_S
        if not self.streams:
            return 0
        frames = self._read()
        if not frames:
            return 0
        self._detect_track_publish(frames)
        return len(frames)

    def close(self) -> None:
        for name in list(self.streams):
            self._drop(name, release=True)
        self.redis.hdel(self.keys.detectors(), self.holder)

    # leases
    def maintain(self) -> None:
        for name in list(self.streams):
            if not self.leases.renew(name):
                log.warning("stream %s: lease lost", name)
                self._drop(name, release=False)
        wanted = {spec.name: spec for spec in wanted_streams(self.redis, self.keys.stream_registry())}
        for name in list(self.streams):
            if name not in wanted:
                log.info("stream %s: no longer wanted, lease released", name)
                self._drop(name, release=True)
        self._acquire(wanted)
        self._heartbeat()

    def _acquire(self, wanted: dict[str, StreamSpec]) -> None:
        share = self._fair_share(len(wanted))
        for name, spec in wanted.items():
            if len(self.streams) >= share:
                break
            if name not in self.streams and self.leases.acquire(name):
                self._adopt(spec)

    def _fair_share(self, wanted: int) -> int:
        """Streams this detector may hold: an even split between the live detectors, at most max_streams."""
        live = 1
        now = time.time()
        forgotten = []
        for holder, raw in self.redis.hgetall(self.keys.detectors()).items():
            try:
                seen = json.loads(raw)["ts"]
            except (ValueError, KeyError):
                continue
            if holder.decode() != self.holder and seen >= now - self.lease_ttl_s:
                live += 1
            elif seen < now - FORGET_AFTER_TTLS * self.lease_ttl_s:
                forgotten.append(holder)
        if forgotten:
            self.redis.hdel(self.keys.detectors(), *forgotten)
        return min(self.max_streams, max(1, math.ceil(wanted / live)))

    def _adopt(self, spec: StreamSpec) -> None:
        key = self.keys.frames(spec.name)
        try:
            self.redis.xgroup_create(key, CONSUMER_GROUP, id="0", mkstream=True)
        except Exception as exc:  # noqa: BLE001 - BUSYGROUP: the group exists
            if "BUSYGROUP" not in str(exc):
                raise
        claimed = self._claim_pending(key)
        config = JobConfig.from_mapping(spec.config) if spec.config else JobConfig()
        counting, counting_error = self._counting(spec, config)
        self.streams[spec.name] = _Stream(
            spec=spec,
            tracker=Sort(
                max_age=config.max_age, min_hits=config.min_hits, iou_threshold=config.iou_threshold,
                first_id=counting.next_track_id if counting is not None else 1,
            ),
            conf=config.conf,
            classes=frozenset(config.classes) if config.classes else None,
            counting=counting,
            counting_error=counting_error,
        )
        if self.metrics is not None:
            self.metrics.stream_adopted(spec.name)
        log.info("stream %s: lease taken (%d pending frames claimed), policy %s", spec.name, claimed, spec.policy)

    def _counting(self, spec: StreamSpec, config: JobConfig) -> tuple[LiveCounting | None, str | None]:
        """The stream's counting, resumed from Redis; a class the model lacks turns it off, with the reason."""
        if not config.counting:
            return None, None
        try:
            return LiveCounting(self.redis, self.keys, spec.name, config, self.runner.names,
                                metrics=self.metrics.counting if self.metrics is not None else None), None
        except ConfigError as exc:
            log.warning("stream %s: counting off: %s", spec.name, exc)
            return None, str(exc)

    def _claim_pending(self, key: str) -> int:
        """Take over frames a previous holder read but never acknowledged, then drop the consumers of dead
        holders (each restart of a detector is a new consumer name; they would pile up in the group)."""
        claimed, cursor = 0, "0-0"
        while True:
            answer = self.redis.xautoclaim(key, CONSUMER_GROUP, self.holder, min_idle_time=0, start_id=cursor, count=1000)
            cursor, entries = answer[0], answer[1]
            claimed += len(entries)
            if cursor in (b"0-0", "0-0"):
                break
        for consumer in self.redis.xinfo_consumers(key, CONSUMER_GROUP):
            name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
            if name != self.holder and consumer["pending"] == 0 and consumer["idle"] > FORGET_AFTER_TTLS * self.lease_ttl_s * 1000:
                self.redis.xgroup_delconsumer(key, CONSUMER_GROUP, name)
        return claimed

    def _drop(self, name: str, *, release: bool) -> None:
        st = self.streams.pop(name, None)
        if st is not None and st.counting is not None:
            st.counting.close()
        if release:
            self.leases.release(name)
        self.redis.delete(self.keys.detector_status(name))

    def _heartbeat(self) -> None:
        now = time.time()
        fps = sum(s.fps for s in self.streams.values())
        self.redis.hset(self.keys.detectors(), self.holder, json.dumps({"streams": sorted(self.streams), "fps": round(fps, 2), "ts": now}))
        pipe = self.redis.pipeline()
        for name, st in self.streams.items():
            key = self.keys.detector_status(name)
            pipe.hset(key, mapping={"detector": self.holder, "fps": round(st.fps, 2), "latency_ms": round(st.latency_ms, 1), "skipped": st.skipped, "processed": st.processed})
            counting_error = st.counting_error or (st.counting.error if st.counting is not None else None)
            if counting_error:
                pipe.hset(key, "counting_error", counting_error)
            pipe.expire(key, STATUS_TTL_SECONDS)
        pipe.execute()
        if self.metrics is not None:
            self.metrics.streams.set(len(self.streams))

    # frames
    def _read(self) -> list[_Frame]:
        ids = {self.keys.frames(name): ("0" if st.backlog else ">") for name, st in self.streams.items()}
        answer = self.redis.xreadgroup(CONSUMER_GROUP, self.holder, ids, count=READ_COUNT, block=self.block_ms)
        by_key = {self.keys.frames(name): st for name, st in self.streams.items()}
        frames: list[_Frame] = []
        for raw_key, entries in answer or []:
            st = by_key.get(raw_key.decode() if isinstance(raw_key, bytes) else raw_key)
            if st is None:
                continue
            if st.backlog and not entries:
                st.backlog = False  # nothing of ours pending any more: new frames from now on
            frames.extend(self._usable(st, entries))
        return frames

    def _usable(self, st: _Stream, entries: list[Any]) -> list[_Frame]:
        unusable = [entry_id for entry_id, fields in entries if not fields]  # trimmed before we got to them
        entries = [(entry_id, fields) for entry_id, fields in entries if fields]
        if st.spec.policy == "latest":
            keep = max(1, math.ceil(self.batch / max(1, len(self.streams))))
            if len(entries) > keep:
                skipped = entries[:-keep]
                entries = entries[-keep:]
                unusable += [entry_id for entry_id, _ in skipped]
                st.skipped += len(skipped)
                if self.metrics is not None:
                    self.metrics.skipped.labels(stream=st.spec.name).inc(len(skipped))
        frames = []
        for entry_id, fields in entries:
            try:
                message = FrameMessage.from_fields(fields)
                image = cv2.imdecode(np.frombuffer(message.data, np.uint8), cv2.IMREAD_COLOR)
                if image is None:
                    raise InputError(f"frame {message.seq}: not a decodable {message.codec} image")
            except InputError as exc:
                log.warning("stream %s: %s", st.spec.name, exc)
                unusable.append(entry_id)
                continue
            frames.append(_Frame(st, entry_id, message, image))
        if unusable:
            self._publish(st, unusable, [])
        return frames

    def _detect_track_publish(self, frames: list[_Frame]) -> None:
        detections: list[Detections] = []
        for start in range(0, len(frames), self.batch):
            chunk = frames[start : start + self.batch]
            t0 = time.perf_counter()
            detections += self.runner.predict([f.image for f in chunk])
            if self.metrics is not None:
                self.metrics.observe_batch(len(chunk), time.perf_counter() - t0)
        by_stream: dict[str, list[tuple[_Frame, Detections]]] = {}
        for frame, dets in zip(frames, detections):
            by_stream.setdefault(frame.stream.spec.name, []).append((frame, dets))
        for name, items in by_stream.items():
            st = items[0][0].stream
            messages = []
            for frame, dets in items:
                rows = st.tracker.update(_filtered(dets, st.conf, st.classes).as_sort_input())
                messages.append((frame, [_track(row, self.runner.names) for row in rows]))
                if st.counting is not None:
                    st.counting.observe(frame.message, rows, st.tracker.track_ids, st.tracker.next_id)
            pts = time.time_ns()
            payload = [
                {"seq": f.message.seq, "ts": f.message.ts, "pts": pts, "tracks": json.dumps([t.as_json() for t in tracks], separators=(",", ":"))}
                for f, tracks in messages
            ]
            if not self._publish(st, [f.entry_id for f, _ in messages], payload):
                continue
            st.processed += len(messages)
            st.note_frames(len(messages), time.monotonic())
            latencies = [(pts - f.message.ts) / 1e9 for f, _ in messages]
            st.latency_ms = 1000 * latencies[-1]
            if self.metrics is not None:
                self.metrics.frames.labels(stream=name).inc(len(messages))
                for latency in latencies:
                    self.metrics.latency.labels(stream=name).observe(latency)

    def _publish(self, st: _Stream, ack_ids: list[Any], payload: list[dict[str, Any]]) -> bool:
        events, state = st.counting.commit_args() if st.counting is not None else ([], None)
        try:
            self.leases.publish_and_ack(
                st.spec.name, ack_ids, payload, st.spec.maxlen(), events=events, events_maxlen=st.spec.max_events, counting=state
            )
            if st.counting is not None:
                st.counting.committed()
            return True
        except LeaseLost:
            log.warning("stream %s: lease lost before publishing; frames left to the new holder", st.spec.name)
            self._drop(st.spec.name, release=False)
            return False


def _filtered(dets: Detections, conf: float, classes: frozenset[int] | None) -> Detections:
    keep = dets.scores >= conf
    if classes is not None:
        keep &= np.isin(dets.class_ids, list(classes))
    if keep.all():
        return dets
    return Detections(dets.boxes[keep], dets.scores[keep], dets.class_ids[keep])


def _track(row: np.ndarray, names: dict[int, str]) -> Track:
    x1, y1, x2, y2, track_id, score, class_id = row.tolist()
    return Track(int(track_id), (x1, y1, x2, y2), int(class_id), names.get(int(class_id), str(int(class_id))), float(score))
