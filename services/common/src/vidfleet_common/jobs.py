"""Job records in Redis, shared by the coordinator (creates, finalises) and the detect workers (report).

Layout under the key prefix (see RedisKeys):
  job:<id>            JSON JobRecord
  job:<id>:results    hash  video name -> VideoResult JSON   (HSET: a redelivered task overwrites, never doubles)
  job:<id>:progress   hash  video name -> frames read so far
  job:<id>:running    hash  video name -> worker hostname
  job:<id>:cancel     string, present once the job is cancelled
  jobs                zset  job id -> created timestamp
  jobs:active         set   ids of jobs not yet finalised
  inflight:<queue>    zset  "<job id>/<video name>" -> dispatch timestamp (the scaling signal)
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


def in_flight_member(job_id: str, video_name: str) -> str:
    return f"{job_id}/{video_name}"


class JobStore:
    """Reads and writes job records through a redis-py client (sync)."""

    def __init__(self, client: Any, keys: RedisKeys) -> None:
        self.redis = client
        self.keys = keys

    # records
    def create(self, record: JobRecord, *, queue: Queue = Queue.DETECT) -> None:
        key = self.keys.job(record.job_id)
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.set(key, record.model_dump_json())
        pipe.hset(self.keys.job_states(), record.job_id, record.state.value)
        pipe.zadd(self.keys.jobs_index(), {record.job_id: now})
        pipe.sadd(self.keys.active_jobs(), record.job_id)
        members = {in_flight_member(record.job_id, v.name): now for v in record.videos if v.error is None}
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

    # per-video reports, written by workers
    def video_started(self, job_id: str, name: str, worker: str) -> None:
        self.redis.hset(self.keys.job_running(job_id), name, worker)

    def video_progress(self, job_id: str, name: str, frames: int) -> None:
        self.redis.hset(self.keys.job_progress(job_id), name, frames)

    def video_finished(self, job_id: str, result: VideoResult, *, queue: Queue = Queue.DETECT) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.job_results(job_id), result.name, result.model_dump_json())
        pipe.hdel(self.keys.job_running(job_id), result.name)
        pipe.hset(self.keys.job_progress(job_id), result.name, result.frames)
        pipe.zrem(self.keys.in_flight(queue), in_flight_member(job_id, result.name))
        pipe.execute()

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
        return {_text(k): _text(v) for k, v in self.redis.hgetall(self.keys.job_running(job_id)).items()}

    # cancellation
    def cancel(self, job_id: str) -> None:
        self.redis.set(self.keys.job_cancel(job_id), "1")

    def is_cancelled(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.keys.job_cancel(job_id)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
