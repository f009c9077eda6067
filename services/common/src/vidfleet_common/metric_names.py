"""Every Prometheus metric vidfleet exports: name, type, labels, meaning, and which service exports it.

Dashboards, alert rules, KEDA triggers and docs/metrics.md are checked against this module.
Names are the exposition names: counters end in `_total`, and prometheus_client is given the
name without that suffix (see `MetricSpec.client_name`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]
Exporter = Literal["detector", "coordinator", "capture", "every"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str
    exporter: Exporter = "detector"

    @property
    def client_name(self) -> str:
        """The name to give prometheus_client, which appends `_total` to counters itself."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


# Detector workers (batch), one /metrics per worker, aggregated over its Celery processes.
FRAMES_PROCESSED = MetricSpec("vidfleet_frames_processed_total", "counter", (), "Frames run through the model.")
FRAMES_DECODED = MetricSpec("vidfleet_frames_decoded_total", "counter", (), "Frames decoded from video sources.")
DETECTIONS = MetricSpec("vidfleet_detections_total", "counter", ("class_name",), "Detections the model returned, by class.")
INFERENCE_SECONDS = MetricSpec("vidfleet_inference_seconds", "histogram", (), "Seconds per model call (one batch of frames).")
BATCH_SIZE = MetricSpec("vidfleet_batch_size", "histogram", (), "Frames per model call.")
ACTIVE_TRACKS = MetricSpec("vidfleet_active_tracks", "gauge", (), "SORT tracks alive in the videos being processed.")
VIDEO_SECONDS = MetricSpec("vidfleet_video_seconds_total", "counter", (), "Seconds of video processed (frames decoded / video fps).")
VIDEOS = MetricSpec("vidfleet_videos_total", "counter", ("outcome",), "Videos a worker finished, by outcome (succeeded/failed/cancelled).")
ERRORS = MetricSpec("vidfleet_errors_total", "counter", ("kind",), "Errors by kind (unreadable, empty, input, model, internal, ...).")
TASKS_RUNNING = MetricSpec("vidfleet_tasks_running", "gauge", (), "detect tasks running in this worker right now.")
MODEL_LOAD_SECONDS = MetricSpec("vidfleet_model_load_seconds", "histogram", (), "Seconds to load a model into a worker process.")

# Detector workers, batch and live: where the model runs.
MODEL_INFO = MetricSpec(
    "vidfleet_model_info", "gauge", ("model", "device"), "1 for each model loaded in this worker, labelled with the device it runs on."
)
DEVICE_MEMORY = MetricSpec(
    "vidfleet_device_memory_bytes",
    "gauge",
    ("device",),
    "Memory this worker holds on its inference device: CUDA memory reserved by PyTorch on cuda:N; "
    "the processes' resident memory on other devices (cpu, mps). Updated at model load and after each batch.",
)

# The coordinator: the fleet as a whole, read from Redis and Celery at scrape time.
QUEUE_DEPTH = MetricSpec(
    "vidfleet_queue_depth", "gauge", ("queue",), "Messages waiting in a Celery queue (not yet taken by a worker).", "coordinator"
)
WORK_IN_FLIGHT = MetricSpec(
    "vidfleet_work_in_flight",
    "gauge",
    ("queue",),
    "Work dispatched to a queue and not finished: queued + reserved + running (the scaling signal).",
    "coordinator",
)
JOBS = MetricSpec("vidfleet_jobs", "gauge", ("state",), "Jobs by state (queued/running/cancelling/succeeded/partial/failed/cancelled).", "coordinator")
JOBS_SUBMITTED = MetricSpec("vidfleet_jobs_submitted_total", "counter", (), "Jobs accepted by the coordinator.", "coordinator")
JOBS_FINISHED = MetricSpec("vidfleet_jobs_finished_total", "counter", ("state",), "Jobs finalised, by final state.", "coordinator")
JOB_VIDEOS = MetricSpec(
    "vidfleet_job_videos_total", "counter", ("outcome",), "Videos of finalised jobs, by outcome (succeeded/failed/cancelled).", "coordinator"
)
WORKERS_ALIVE = MetricSpec("vidfleet_workers_alive", "gauge", ("queue",), "Celery workers answering ping, by queue they consume.", "coordinator")
REDIS_UP = MetricSpec("vidfleet_redis_up", "gauge", (), "1 when the coordinator reaches Redis, else 0.", "coordinator")
REDIS_DATA_LOSS = MetricSpec(
    "vidfleet_redis_data_loss_total", "counter", (),
    "Times the coordinator found that Redis had lost its data (the fleet epoch vanished or changed); "
    "the jobs it knew to be running are failed with the reason.", "coordinator",
)
REDIS_PERSISTENT = MetricSpec(
    "vidfleet_redis_persistent", "gauge", (),
    "Redis persistence as the coordinator read it at start: 1 AOF or RDB on, 0 neither (a restart loses every job), "
    "-1 unknown (CONFIG GET refused, as on managed Redis).", "coordinator",
)
VIDEOS_GIVEN_BACK = MetricSpec(
    "vidfleet_videos_given_back_total", "counter", (),
    "Videos the reaper put back at the front of the queue because the worker process running them stopped beating.", "coordinator",
)

# Every service, one series per process.
REDIS_RECONNECTS = MetricSpec(
    "vidfleet_redis_reconnects_total", "counter", (),
    "Times this process reached Redis again after losing its connection (one per outage, not per retry).", "every",
)

# Capture workers: one /metrics per worker, summed over its Celery pool processes.
CAPTURE_FRAMES = MetricSpec(
    "vidfleet_capture_frames_total", "counter", ("stream", "stage"),
    "Frames of a stream by stage: read from the source, encoded, appended to Redis.", "capture",
)
CAPTURE_FPS = MetricSpec("vidfleet_capture_fps", "gauge", ("stream",), "Frames appended per second (moving average over ~2 s).", "capture")
CAPTURE_RECONNECTS = MetricSpec(
    "vidfleet_capture_reconnects_total", "counter", ("stream",), "Times a capture lost its source and opened it again.", "capture"
)
CAPTURE_ERRORS = MetricSpec("vidfleet_capture_errors_total", "counter", ("stream", "kind"), "Capture errors by kind (open, read, encode, redis).", "capture")

# Detector live mode: one /metrics per live detector.
LIVE_STREAMS = MetricSpec("vidfleet_live_streams", "gauge", (), "Streams this live detector holds the lease of.")
LIVE_FRAMES = MetricSpec("vidfleet_live_frames_total", "counter", ("stream",), "Frames of a stream run through the model and tracked.")
LIVE_SKIPPED = MetricSpec(
    "vidfleet_live_frames_skipped_total", "counter", ("stream",), "Frames skipped (acknowledged unprocessed) to catch up, policy `latest`."
)
LIVE_LATENCY = MetricSpec(
    "vidfleet_live_latency_seconds", "histogram", ("stream",), "End-to-end latency: capture timestamp to tracks appended."
)

# Counting lines and zones (docs/counting.md). Live: one series per stream, line or zone, direction and class,
# bounded by MAX_LINES / MAX_ZONES per stream and MAX_CLASS_LABELS per line or zone (further classes: "other").
LINE_CROSSINGS = MetricSpec(
    "vidfleet_line_crossings_total", "counter", ("stream", "line", "direction", "class_name"), "Tracks that crossed a live stream's counting line."
)
ZONE_ENTRIES = MetricSpec("vidfleet_zone_entries_total", "counter", ("stream", "zone", "class_name"), "Tracks that entered a live stream's zone.")
ZONE_OBJECTS = MetricSpec("vidfleet_zone_objects", "gauge", ("stream", "zone", "class_name"), "Tracks inside a live stream's zone now.")
ZONE_CAPACITY = MetricSpec(
    "vidfleet_zone_capacity", "gauge", ("stream", "zone"), "The capacity a zone's config gives it (zones with a capacity only)."
)
ZONE_DWELL = MetricSpec(
    "vidfleet_zone_dwell_seconds", "histogram", ("stream", "zone"), "Seconds a track spent inside a live stream's zone, observed when it exits."
)
WEBHOOK_REQUESTS = MetricSpec(
    "vidfleet_webhook_requests_total", "counter", ("stream", "outcome"), "Event batches POSTed to a stream's webhook, by outcome (delivered/failed)."
)
WEBHOOK_EVENTS = MetricSpec(
    "vidfleet_webhook_events_total", "counter", ("stream", "outcome"),
    "Counting events by webhook outcome: delivered, or dropped (trimmed from the event stream before delivery).",
)
# Batch jobs: totals per worker over the videos it finished, never per video (bounded: MAX_BATCH_NAMES names).
BATCH_LINE_CROSSINGS = MetricSpec(
    "vidfleet_batch_line_crossings_total", "counter", ("line", "direction", "class_name"), "Line crossings counted in the videos a worker finished."
)
BATCH_ZONE_ENTRIES = MetricSpec(
    "vidfleet_batch_zone_entries_total", "counter", ("zone", "class_name"), "Zone entries counted in the videos a worker finished."
)

# The coordinator's view of live streams.
STREAMS_WANTED = MetricSpec("vidfleet_streams_wanted", "gauge", (), "Streams registered (wanted), the capture scaling signal.", "coordinator")
STREAMS_CAPTURING = MetricSpec("vidfleet_streams_capturing", "gauge", (), "Wanted streams whose capture is running (not starting, reconnecting or failed).", "coordinator")
STREAM_LENGTH = MetricSpec("vidfleet_stream_length", "gauge", ("stream",), "Frames held in a stream's frame stream (XLEN).", "coordinator")
STREAM_LAG = MetricSpec(
    "vidfleet_stream_lag", "gauge", ("stream",), "Frames in a stream not yet delivered to its detector (consumer group lag).", "coordinator"
)
STREAM_LAG_TOTAL = MetricSpec(
    "vidfleet_streams_lag_frames", "gauge", (), "Sum of the consumer lag of every stream, the live detector scaling signal.", "coordinator"
)

ALL: tuple[MetricSpec, ...] = (
    FRAMES_PROCESSED,
    FRAMES_DECODED,
    DETECTIONS,
    INFERENCE_SECONDS,
    BATCH_SIZE,
    ACTIVE_TRACKS,
    VIDEO_SECONDS,
    VIDEOS,
    ERRORS,
    TASKS_RUNNING,
    MODEL_LOAD_SECONDS,
    MODEL_INFO,
    DEVICE_MEMORY,
    QUEUE_DEPTH,
    WORK_IN_FLIGHT,
    JOBS,
    JOBS_SUBMITTED,
    JOBS_FINISHED,
    JOB_VIDEOS,
    WORKERS_ALIVE,
    REDIS_UP,
    REDIS_DATA_LOSS,
    REDIS_PERSISTENT,
    VIDEOS_GIVEN_BACK,
    REDIS_RECONNECTS,
    CAPTURE_FRAMES,
    CAPTURE_FPS,
    CAPTURE_RECONNECTS,
    CAPTURE_ERRORS,
    LIVE_STREAMS,
    LIVE_FRAMES,
    LIVE_SKIPPED,
    LIVE_LATENCY,
    LINE_CROSSINGS,
    ZONE_ENTRIES,
    ZONE_OBJECTS,
    ZONE_CAPACITY,
    ZONE_DWELL,
    WEBHOOK_REQUESTS,
    WEBHOOK_EVENTS,
    BATCH_LINE_CROSSINGS,
    BATCH_ZONE_ENTRIES,
    STREAMS_WANTED,
    STREAMS_CAPTURING,
    STREAM_LENGTH,
    STREAM_LAG,
    STREAM_LAG_TOTAL,
)
BY_NAME: dict[str, MetricSpec] = {m.name: m for m in ALL}
