"""Names shared by the services: queues, Celery task names and Redis keys. Defined here only."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Queue(StrEnum):
    CAPTURE = "capture"
    DETECT = "detect"
    COORDINATOR = "coordinator"


class TaskName(StrEnum):
    """Celery task names: the coordinator sends by name, without importing service code."""

    DETECT_VIDEO = "vidfleet.detect.video"
    STITCH_VIDEO = "vidfleet.detect.stitch"
    RENDER_CHUNK = "vidfleet.detect.render"
    JOIN_VIDEO = "vidfleet.detect.join"
    FINALIZE_JOB = "vidfleet.coordinator.finalize_job"
    CAPTURE_STREAM = "vidfleet.capture.stream"


@dataclass(frozen=True)
class RedisKeys:
    """Every Redis key vidfleet uses, under one configurable prefix."""

    prefix: str = "vidfleet:"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def jobs_index(self) -> str:
        return f"{self.prefix}jobs"

    def job_states(self) -> str:
        """Hash job id -> state: counts jobs by state without reading every record."""
        return f"{self.prefix}jobs:state"

    def job_finalizing(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:finalizing"

    def active_jobs(self) -> str:
        return f"{self.prefix}jobs:active"

    def job_results(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:results"

    def job_progress(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:progress"

    def job_running(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:running"

    def job_stitching(self, job_id: str) -> str:
        """Hash video name -> when its stitch task was sent (once every chunk of the split video has a result)."""
        return f"{self.prefix}job:{job_id}:stitching"

    def job_cancel(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}:cancel"

    def job_attempts(self, job_id: str) -> str:
        """Hash video name -> times a worker started it (more than 1: redelivered after a worker died)."""
        return f"{self.prefix}job:{job_id}:attempts"

    def fleet_epoch(self) -> str:
        """Hash {id, created_at, previous, data_lost_at}: changes only when Redis lost its data."""
        return f"{self.prefix}epoch"

    def workers(self) -> str:
        """Hash worker incarnation -> JSON {hostname, pid, started_at}: the worker processes that announced themselves."""
        return f"{self.prefix}workers"

    def workers_seen(self) -> str:
        """Sorted set worker incarnation -> last heartbeat, in Redis server milliseconds."""
        return f"{self.prefix}workers:seen"

    def in_flight(self, queue: Queue | str) -> str:
        """Sorted set of work dispatched to `queue` and not yet finished (the scaling signal)."""
        return f"{self.prefix}inflight:{queue}"

    def stream_registry(self) -> str:
        return f"{self.prefix}streams"

    def stream_lease(self, stream: str) -> str:
        return f"{self.prefix}lease:{stream}"

    def capture_status(self, stream: str) -> str:
        """Hash the capture task refreshes every heartbeat; it expires when the capture dies."""
        return f"{self.prefix}capture:{stream}"

    def capture_owner(self, stream: str) -> str:
        """Lock held (with a TTL) by the one capture feeding `stream`."""
        return f"{self.prefix}capture:{stream}:owner"

    def capture_starting(self, stream: str) -> str:
        """Set (with a TTL) by the reconciler when it sends a capture task, until the capture runs."""
        return f"{self.prefix}capture:{stream}:starting"

    def stream_failures(self) -> str:
        """Hash name -> JSON {error, failures, retry_in_s}: a stream's last failed capture."""
        return f"{self.prefix}streams:failures"

    def streams_removed(self) -> str:
        """Set of removed streams whose frame stream and status keys the reconciler has yet to delete."""
        return f"{self.prefix}streams:removed"

    def capture_stop(self, stream: str) -> str:
        """Present while the capture of `stream` must stop (the stream was removed)."""
        return f"{self.prefix}capture:{stream}:stop"

    def detector_status(self, stream: str) -> str:
        """Hash the detector holding the lease refreshes: fps, lag, latency, skipped."""
        return f"{self.prefix}detector:{stream}"

    def detectors(self) -> str:
        """Hash detector id -> JSON heartbeat (streams held, fps), for `streams ls` and metrics."""
        return f"{self.prefix}detectors"

    def frames(self, stream: str) -> str:
        return f"{self.prefix}frames:{stream}"

    def tracks(self, stream: str) -> str:
        return f"{self.prefix}tracks:{stream}"

    def events(self, stream: str) -> str:
        """Counting events of a live stream (one entry per event), trimmed to the stream's max_events."""
        return f"{self.prefix}events:{stream}"

    def counting_state(self, stream: str) -> str:
        """Hash: `state` (the live counter's JSON, which a replacement detector resumes) and `counts`."""
        return f"{self.prefix}counting:{stream}"

    def webhook_cursor(self, stream: str) -> str:
        """The id of the last event of `stream` its webhook acknowledged."""
        return f"{self.prefix}events:{stream}:webhook"
