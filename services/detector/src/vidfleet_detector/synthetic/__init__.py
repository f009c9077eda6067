"""Synthetic moving-shapes scenes: test videos with ground truth and a YOLO training set.

numpy + OpenCV only (no torch, no ultralytics). Classes, in id order: circle, square, triangle.
Test videos use seeds below 1000; training data uses seeds from 1_000_000.
"""

from .dataset import TEST_SEED_LIMIT, TRAIN_SEED_MIN, YoloDataset, generate_yolo_dataset, render_training_frame
from .scene import CLASS_NAMES, MIN_VISIBILITY, GroundTruthObject, RenderedFrame, Scene
from .video import GeneratedVideo, generate_video, gt_path_for, load_ground_truth

__all__ = [
    "CLASS_NAMES",
    "MIN_VISIBILITY",
    "TEST_SEED_LIMIT",
    "TRAIN_SEED_MIN",
    "GeneratedVideo",
    "GroundTruthObject",
    "RenderedFrame",
    "Scene",
    "YoloDataset",
    "generate_video",
    "generate_yolo_dataset",
    "gt_path_for",
    "load_ground_truth",
    "render_training_frame",
]
