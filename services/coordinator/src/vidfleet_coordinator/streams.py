"""The stream registry: which live streams are wanted (in Redis), and how each one is doing.

`vidfleet streams add/ls/rm` and the HTTP API change the registry; the reconciler makes the
fleet match it; capture workers and live detectors report into per-stream status hashes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError

from vidfleet_common.contracts import RedisKeys
from vidfleet_common.counts import Counts
from vidfleet_common.errors import ConfigError, InputError
from vidfleet_common.inputs import inside_roots
from vidfleet_common.job_config import JobConfig
from vidfleet_common.settings import Settings, scrub_url
from vidfleet_common.streams import CONSUMER_GROUP, StreamSpec, wanted_streams
from vidfleet_common.validation import describe_validation_error
from vidfleet_coordinator.dispatch import SubmissionRefused


LAG_COUNT_LIMIT = 100_000
LIVE_CAPTURE_STATES = ("starting", "running", "reconnecting")

# Forget a removed stream once nothing feeds or reads it: no capture lock, no capture task on its way,
# no detector lease, no live capture state. Checked and deleted in one step, so that nothing appends
# between the two (a capture that starts later finds the stop key and appends nothing).
# KEYS: registry, removed set, owner lock, starting marker, lease, capture status, detector status, frames,
# counting state, webhook cursor (the events stream is kept, like the tracks).
# ARGV: name, then the capture states that mean "still capturing" (LIVE_CAPTURE_STATES).
# Returns 1 when forgotten, 0 while still in use, -1 when the stream was added again.
_FORGET = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then
  redis.call('srem', KEYS[2], ARGV[1])
  return -1
end
if redis.call('exists', KEYS[3], KEYS[4], KEYS[5]) > 0 then return 0 end
local state = redis.call('hget', KEYS[6], 'state')
for i = 2, #ARGV do
  if state == ARGV[i] then return 0 end
end
redis.call('del', KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10])
redis.call('srem', KEYS[2], ARGV[1])
return 1
"""


class StreamExists(InputError):
    pass


class StreamStatus(BaseModel):
    name: str
    source: str
    state: str = Field(description="pending (no capture yet), starting, running, reconnecting, failed, stopped or ended (a file played to its end).")
    error: str | None = None
    capture_worker: str | None = None
    capture_fps: float | None = None
    frames: int = 0
    reconnects: int = 0
    detector: str | None = Field(None, description="The live detector holding the stream's lease.")
    detector_fps: float | None = None
    lag: int | None = Field(None, description="Frames not yet delivered to the detector.")
    latency_ms: float | None = Field(None, description="Recent capture-to-tracks latency.")
    skipped: int = 0
    length: int = Field(0, description="Frames held in the frame stream.")
    counts: Counts | None = Field(None, description="What the stream's counting lines and zones counted so far (null without any).")
    counting_error: str | None = Field(None, description="Why the detector does not count this stream (a class the model lacks, a point outside the frame).")
    spec: StreamSpec


def validate_source(source: str, settings: Settings) -> str:
    """A webcam index, a URL with an allowed scheme, or a file inside the input roots (made absolute)."""
    if source.isdigit():
        return source
    if "://" in source:
        scheme = urlsplit(source).scheme.lower()
        allowed = [s.lower() for s in settings.stream_url_schemes]
        if scheme not in allowed:
            raise SubmissionRefused(f"{scrub_url(source)}: URL scheme '{scheme}' is not allowed for streams (allowed: {', '.join(allowed)})")
        return source
    roots = [r.resolve() for r in settings.input_roots]
    if not roots:
        raise SubmissionRefused(f"{source}: file sources are disabled: the coordinator has no input roots (VIDFLEET_INPUT_ROOTS)")
    path = Path(source) if Path(source).is_absolute() else roots[0] / source
    if not inside_roots(path, roots):
        raise SubmissionRefused(f"{source}: outside the input roots ({', '.join(str(r) for r in roots)})")
    return str(path)


def make_spec(raw: dict[str, Any], settings: Settings) -> StreamSpec:
    try:
        spec = StreamSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, what="stream field")) from None
    JobConfig.from_mapping(spec.config)  # same one-line errors as a job's config
    return spec.model_copy(update={"source": validate_source(spec.source, settings)})


class StreamRegistry:
    def __init__(self, redis: Any, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._forget = redis.register_script(_FORGET)

    def add(self, spec: StreamSpec) -> None:
        if not self.redis.hsetnx(self.keys.stream_registry(), spec.name, spec.model_dump_json()):
            raise StreamExists(f"stream '{spec.name}' exists (remove it first: vidfleet streams rm {spec.name})")
        self.redis.delete(self.keys.capture_stop(spec.name))

    def remove(self, name: str) -> bool:
        """Unwanted from now on: the capture stops at its next heartbeat, the detector lets the lease go,
        and then the reconciler deletes the frame stream and the status keys (`forget`). Tracks are kept."""
        removed = bool(self.redis.hdel(self.keys.stream_registry(), name))
        self.redis.hdel(self.failures_key(), name)
        if removed:
            self.redis.set(self.keys.capture_stop(name), "1", ex=120)
            self.redis.sadd(self.keys.streams_removed(), name)
            if self.redis.hget(self.keys.capture_status(name), "state") in (b"ended", b"failed"):
                self.redis.delete(self.keys.capture_status(name))  # nothing runs: forget it now
        return removed

    def removed(self) -> list[str]:
        """Removed streams whose frame stream and status keys are still to be deleted."""
        return sorted(_text(name) for name in self.redis.smembers(self.keys.streams_removed()))

    def forget(self, name: str) -> bool:
        """Delete a removed stream's frame stream and status keys, once no capture feeds it and no detector
        holds it; False while one still does (or when the stream was added again). `tracks:<name>` stays:
        applications may still be reading it."""
        k = self.keys
        keys = [
            k.stream_registry(), k.streams_removed(), k.capture_owner(name), k.capture_starting(name), k.stream_lease(name),
            k.capture_status(name), k.detector_status(name), k.frames(name), k.counting_state(name), k.webhook_cursor(name),
        ]
        return int(self._forget(keys=keys, args=[name, *LIVE_CAPTURE_STATES])) == 1

    def get(self, name: str) -> StreamSpec | None:
        raw = self.redis.hget(self.keys.stream_registry(), name)
        return StreamSpec.model_validate_json(raw) if raw else None

    def wanted(self) -> list[StreamSpec]:
        return wanted_streams(self.redis, self.keys.stream_registry())

    def status(self, spec: StreamSpec) -> StreamStatus:
        capture = _strings(self.redis.hgetall(self.keys.capture_status(spec.name)))
        detector = _strings(self.redis.hgetall(self.keys.detector_status(spec.name)))
        lease = self.redis.get(self.keys.stream_lease(spec.name))
        failure = json.loads(self.redis.hget(self.failures_key(), spec.name) or "null")
        state = capture.get("state") or ("starting" if self.redis.exists(self.starting_key(spec.name)) else "pending")
        error = capture.get("error") or None
        if failure and state in ("pending", "starting", "failed"):
            state = "failed"
            error = f"{failure['error']} (attempt {failure['failures']}, retrying every {failure['retry_in_s']}s at most)"
        return StreamStatus(
            name=spec.name,
            source=scrub_url(spec.source),
            state=state,
            error=error,
            capture_worker=capture.get("worker"),
            capture_fps=_float(capture.get("fps")),
            frames=int(capture.get("frames", 0) or 0),
            reconnects=int(capture.get("reconnects", 0) or 0),
            detector=lease.decode() if isinstance(lease, bytes) else lease,
            detector_fps=_float(detector.get("fps")) if lease else None,
            lag=self.lag(spec.name),
            latency_ms=_float(detector.get("latency_ms")) if lease else None,
            skipped=int(detector.get("skipped", 0) or 0),
            length=int(self.redis.xlen(self.keys.frames(spec.name))),
            counts=self.counts(spec.name),
            counting_error=detector.get("counting_error") if lease else None,
            spec=spec.model_copy(update={"source": scrub_url(spec.source), "webhook": scrub_url(spec.webhook) if spec.webhook else None}),
        )

    def counts(self, name: str) -> Counts | None:
        """The counts the stream's detector last committed (None before any)."""
        raw = self.redis.hget(self.keys.counting_state(name), "counts")
        return Counts.model_validate_json(raw) if raw else None

    def lag(self, name: str) -> int | None:
        """Entries not yet delivered to the detectors' consumer group (None before a detector joined)."""
        try:
            groups = self.redis.xinfo_groups(self.keys.frames(name))
        except Exception:  # noqa: BLE001 - no stream yet
            return None
        for group in groups:
            if _text(group.get("name")) == CONSUMER_GROUP:
                lag = group.get("lag")
                if lag is not None:
                    return int(lag)
                # Redis < 7 reports no lag: count what follows the last delivered entry (bounded).
                last = _text(group.get("last-delivered-id", "0-0"))
                return len(self.redis.xrange(self.keys.frames(name), min=f"({last}", count=LAG_COUNT_LIMIT))
        return None

    def failures_key(self) -> str:
        return self.keys.stream_failures()

    def starting_key(self, name: str) -> str:
        return self.keys.capture_starting(name)

    def statuses(self) -> list[StreamStatus]:
        return [self.status(spec) for spec in self.wanted()]


def _strings(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float(value: str | None) -> float | None:
    try:
        return round(float(value), 2) if value not in (None, "") else None
    except ValueError:
        return None


