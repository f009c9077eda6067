"""Job records in Redis, shared by the coordinator (creates, finalises) and the detect workers (report).

Layout under the key prefix (see RedisKeys):
  job:<id>            JSON JobRecord
  job:<id>:results    hash  video name -> VideoResult JSON   (HSET: a redelivered task overwrites, never doubles)
                            (a split video's chunks are units of their own, <video>.chunkNNN, in every hash below)
  job:<id>:progress   hash  video name -> frames read so far
  job:<id>:running    hash  video name -> JSON {worker, incarnation}: who runs it now
  job:<id>:attempts   hash  video name -> times a worker started it
  job:<id>:cancel     string, present once the job is cancelled
  job:<id>:stitching hash  video name -> time its stitch task was sent (a split video: vidfleet_common.chunks)
  jobs                zset  job id -> created timestamp
  jobs:active         set   ids of jobs not yet finalised
  inflight:<queue>    zset  "<job id>/<video name>" -> dispatch timestamp (the scaling signal)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vidfleet_common.chunks import Chunk, chunk_unit
from vidfleet_common.contracts import Queue, RedisKeys
from vidfleet_common.results import VideoResult


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in {JobState.SUCCEEDED, JobState.PARTIAL, JobState.FAILED, JobState.CANCELLED}


class JobVideo(BaseModel):
    """A video of a job as dispatched: the reference a detect task receives."""

    model_config = ConfigDict(extra="forbid")

    source: str
    name: str
    error: str | None = None
    error_kind: str | None = None
    chunks: list[Chunk] = Field(default_factory=list, description="A split video's chunks (split_seconds); empty: processed whole.")
    warning: str | None = Field(None, description="Why a video the config would split is processed whole.")

    def units(self) -> list[str]:
        """What runs as a detect task, by the name its results, progress and running mark are kept under."""
        return [chunk_unit(self.name, c.index) for c in self.chunks] if self.chunks else [self.name]


class JobRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str
    state: JobState = JobState.QUEUED
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    finished_at: str | None = None
    out_dir: str
    config: dict[str, Any]
    videos: list[JobVideo]
    message: str = ""
    epoch: str | None = Field(None, description="The fleet epoch the job was dispatched in (vidfleet_common.epoch).")


@dataclass(frozen=True)
class Holder:
    """Who runs a video: the Celery hostname, and the worker process incarnation (vidfleet_common.heartbeats)."""

    worker: str
    incarnation: str | None = None

    def to_json(self) -> str:
        return json.dumps({"worker": self.worker, "incarnation": self.incarnation})

    @classmethod
    def from_raw(cls, raw: bytes | str) -> Holder:
        text = _text(raw)
        try:
            data = json.loads(text)
            return cls(str(data["worker"]), data.get("incarnation"))
        except (ValueError, KeyError, TypeError):
            return cls(text)  # a bare hostname


# KEYS: results hash, running hash, progress hash, in-flight zset, epoch hash. ARGV: video name, result JSON,
# frames, in-flight member, epoch id ('' to skip the check). Nothing is written once the epoch changed.
_FINISH = """
if ARGV[5] ~= '' and redis.call('hget', KEYS[5], 'id') ~= ARGV[5] then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('hdel', KEYS[2], ARGV[1])
redis.call('hset', KEYS[3], ARGV[1], ARGV[3])
redis.call('zrem', KEYS[4], ARGV[4])
return 1
"""
# KEYS: running hash. ARGV: video name, incarnation. Clears the mark only if that incarnation still holds it.
_RELEASE = """
local raw = redis.call('hget', KEYS[1], ARGV[1])
if not raw then return 0 end
local ok, holder = pcall(cjson.decode, raw)
if ok and type(holder) == 'table' and holder['incarnation'] == ARGV[2] then
  return redis.call('hdel', KEYS[1], ARGV[1])
end
return 0
"""


def in_flight_member(job_id: str, video_name: str) -> str:
    return f"{job_id}/{video_name}"


class JobStore:
    """Reads and writes job records through a redis-py client (sync)."""

    def __init__(self, client: Any, keys: RedisKeys) -> None:
        self.redis = client
        self.keys = keys
        self._finish = client.register_script(_FINISH)
        self._release = client.register_script(_RELEASE)

    # records
    def create(self, record: JobRecord, *, queue: Queue = Queue.DETECT) -> None:
        key = self.keys.job(record.job_id)
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.set(key, record.model_dump_json())
        pipe.hset(self.keys.job_states(), record.job_id, record.state.value)
        pipe.zadd(self.keys.jobs_index(), {record.job_id: now})
        pipe.sadd(self.keys.active_jobs(), record.job_id)
        members = {in_flight_member(record.job_id, unit): now for v in record.videos if v.error is None for unit in v.units()}
        if members:
            pipe.zadd(self.keys.in_flight(queue), members)
        pipe.execute()

    def get(self, job_id: str) -> JobRecord | None:
        raw = self.redis.get(self.keys.job(job_id))
        return JobRecord.model_validate_json(raw) if raw else None

    def save(self, record: JobRecord) -> None:
        pipe = self.redis.pipeline()
        pipe.set(self.keys.job(record.job_id), record.model_dump_json())
        pipe.hset(self.keys.job_states(), record.job_id, record.state.value)
        pipe.execute()

    def get_many(self, job_ids: list[str]) -> list[JobRecord]:
        if not job_ids:
            return []
        raw = self.redis.mget([self.keys.job(i) for i in job_ids])
        return [JobRecord.model_validate_json(r) for r in raw if r]

    def count_by_state(self) -> dict[str, int]:
        counts = {state.value: 0 for state in JobState}
        for value in self.redis.hvals(self.keys.job_states()):
            state = _text(value)
            counts[state] = counts.get(state, 0) + 1
        return counts

    def list_ids(self, limit: int = 100) -> list[str]:
        return [i.decode() if isinstance(i, bytes) else i for i in self.redis.zrevrange(self.keys.jobs_index(), 0, limit - 1)]

    def active_ids(self) -> list[str]:
        return sorted(i.decode() if isinstance(i, bytes) else i for i in self.redis.smembers(self.keys.active_jobs()))

    def mark_finished(self, record: JobRecord) -> None:
        pipe = self.redis.pipeline()
        pipe.set(self.keys.job(record.job_id), record.model_dump_json())
        pipe.hset(self.keys.job_states(), record.job_id, record.state.value)
        pipe.srem(self.keys.active_jobs(), record.job_id)
        pipe.execute()

    def restore_finished(self, record: JobRecord, videos: list[VideoResult]) -> None:
        """Write back a finished job and its video results, as into a Redis that lost them (not active, not in flight)."""
        pipe = self.redis.pipeline()
        pipe.set(self.keys.job(record.job_id), record.model_dump_json())
        pipe.hset(self.keys.job_states(), record.job_id, record.state.value)
        created = datetime.fromisoformat(record.created_at).timestamp()
        pipe.zadd(self.keys.jobs_index(), {record.job_id: created})
        pipe.srem(self.keys.active_jobs(), record.job_id)
        if videos:
            pipe.hset(self.keys.job_results(record.job_id), mapping={v.name: v.model_dump_json() for v in videos})
            pipe.hset(self.keys.job_progress(record.job_id), mapping={v.name: v.frames for v in videos})
        pipe.execute()

    def stitch_once(self, job_id: str, name: str, *, queue: Queue = Queue.DETECT) -> bool:
        """True the first time only for `name` (a split video's stitch, render or join unit): the caller sends
        its task, which is then in flight."""
        if not self.redis.hsetnx(self.keys.job_stitching(job_id), name, time.time()):
            return False
        self.redis.zadd(self.keys.in_flight(queue), {in_flight_member(job_id, name): time.time()})
        return True

    # per-video reports, written by workers
    def video_started(self, job_id: str, name: str, holder: Holder) -> int:
        """Mark the video running on `holder`; returns the attempt number (1 the first time)."""
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.job_running(job_id), name, holder.to_json())
        pipe.hincrby(self.keys.job_attempts(job_id), name, 1)
        return int(pipe.execute()[1])

    def video_progress(self, job_id: str, name: str, frames: int) -> None:
        self.redis.hset(self.keys.job_progress(job_id), name, frames)

    def video_finished(self, job_id: str, result: VideoResult, *, queue: Queue = Queue.DETECT, epoch: str | None = None) -> bool:
        """Record the result (and clear running, in flight); with `epoch`, only while Redis still has that
        epoch: a result of a job lost with Redis's data is not written into the new, empty Redis."""
        keys = [
            self.keys.job_results(job_id), self.keys.job_running(job_id), self.keys.job_progress(job_id),
            self.keys.in_flight(queue), self.keys.fleet_epoch(),
        ]
        args = [result.name, result.model_dump_json(), result.frames, in_flight_member(job_id, result.name), epoch or ""]
        return bool(self._finish(keys=keys, args=args))

    def release(self, job_id: str, name: str, incarnation: str) -> bool:
        """Clear the video's running mark if `incarnation` still holds it (the reaper, for a dead worker)."""
        return bool(self._release(keys=[self.keys.job_running(job_id)], args=[name, incarnation]))

    def video_settled_if_pending(self, job_id: str, result: VideoResult, *, queue: Queue = Queue.DETECT) -> bool:
        """Record `result` only when the video has none yet (a cancelled or refused video); True if recorded."""
        recorded = bool(self.redis.hsetnx(self.keys.job_results(job_id), result.name, result.model_dump_json()))
        if recorded:
            self.redis.zrem(self.keys.in_flight(queue), in_flight_member(job_id, result.name))
        return recorded

    def results(self, job_id: str) -> dict[str, VideoResult]:
        raw = self.redis.hgetall(self.keys.job_results(job_id))
        return {_text(k): VideoResult.model_validate_json(v) for k, v in raw.items()}

    def progress(self, job_id: str) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self.redis.hgetall(self.keys.job_progress(job_id)).items()}

    def running(self, job_id: str) -> dict[str, str]:
        """Video name -> the hostname of the worker running it."""
        return {name: holder.worker for name, holder in self.holders(job_id).items()}

    def holders(self, job_id: str) -> dict[str, Holder]:
        return {_text(k): Holder.from_raw(v) for k, v in self.redis.hgetall(self.keys.job_running(job_id)).items()}

    def attempts(self, job_id: str) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self.redis.hgetall(self.keys.job_attempts(job_id)).items()}

    # cancellation
    def cancel(self, job_id: str) -> None:
        self.redis.set(self.keys.job_cancel(job_id), "1")

    def is_cancelled(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.keys.job_cancel(job_id)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
