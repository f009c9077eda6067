"""Every Prometheus metric vidfleet exports: name, type, labels, meaning. Dashboards and alerts are checked against this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str


FRAMES_PROCESSED = MetricSpec("vidfleet_frames_processed_total", "counter", (), "Frames run through the model.")
FRAMES_DECODED = MetricSpec("vidfleet_frames_decoded_total", "counter", (), "Frames decoded from video sources.")
DETECTIONS = MetricSpec("vidfleet_detections_total", "counter", ("class_name",), "Detections the model returned.")
INFERENCE_SECONDS = MetricSpec(
    "vidfleet_inference_seconds", "histogram", (), "Seconds per model call (one batch of frames)."
)
BATCH_SIZE = MetricSpec("vidfleet_batch_size", "histogram", (), "Frames per model call.")
ACTIVE_TRACKS = MetricSpec("vidfleet_active_tracks", "gauge", (), "SORT tracks alive in the videos being processed.")
VIDEO_SECONDS = MetricSpec("vidfleet_video_seconds_total", "counter", (), "Seconds of video processed.")
VIDEOS = MetricSpec("vidfleet_videos_total", "counter", ("outcome",), "Videos finished, by outcome (succeeded/failed/cancelled).")
ERRORS = MetricSpec("vidfleet_errors_total", "counter", ("kind",), "Errors by kind (unreadable, empty, model, output, ...).")

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
)
