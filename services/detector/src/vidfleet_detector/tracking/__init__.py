"""SORT multi-object tracker (a faithful port of abewley/sort@2236dff) and MOT text-file helpers."""

from .association import associate_detections_to_trackers, iou_batch, linear_assignment
from .kalman_box_tracker import KalmanBoxTracker, convert_bbox_to_z, convert_x_to_bbox
from .mot_format import (
    MOT_ROW_FORMAT,
    MotFormatError,
    format_mot_row,
    iter_mot_frames,
    read_mot_detections,
    track_mot_file,
    write_mot_rows,
)
from .sort import OUTPUT_COLUMNS, Sort

__all__ = [
    "MOT_ROW_FORMAT",
    "OUTPUT_COLUMNS",
    "KalmanBoxTracker",
    "MotFormatError",
    "Sort",
    "associate_detections_to_trackers",
    "convert_bbox_to_z",
    "convert_x_to_bbox",
    "format_mot_row",
    "iou_batch",
    "iter_mot_frames",
    "linear_assignment",
    "read_mot_detections",
    "track_mot_file",
    "write_mot_rows",
]
