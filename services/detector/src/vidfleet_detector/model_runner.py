"""Load a YOLO model once and run batches of frames through it.

ultralytics is imported here and only here, lazily, after YOLO_CONFIG_DIR points at a writable folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from vidfleet_common.errors import ModelError
from vidfleet_common.job_config import JobConfig

BUNDLED_MODELS = ("vidfleet-shapes-n.pt",)
_WEIGHTS_PACKAGE = "vidfleet_detector.weights"


def ensure_yolo_config_dir() -> Path:
    """Point ultralytics at a writable settings folder before it is imported."""
    current = os.environ.get("YOLO_CONFIG_DIR")
    candidates = [Path(current)] if current else []
    candidates += [Path.home() / ".cache" / "vidfleet" / "ultralytics", Path(tempfile.gettempdir()) / "vidfleet-ultralytics"]
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                os.environ["YOLO_CONFIG_DIR"] = str(folder)
                return folder
        except OSError:
            continue
    raise ModelError("no writable folder for ultralytics settings: set YOLO_CONFIG_DIR")


def resolve_model_path(model: str) -> str:
    """A bundled model's file path, an existing file's path, or the name as given (ultralytics downloads it)."""
    if model in BUNDLED_MODELS:
        return str(resources.files(_WEIGHTS_PACKAGE).joinpath(model))
    path = Path(model).expanduser()
    if path.suffix and (path.exists() or os.sep in model):
        if not path.is_file():
            raise ModelError(f"model '{model}': no such file")
        return str(path)
    return model


def resolve_device(device: str) -> str:
    """'auto' becomes cuda:0 when a GPU is usable, else mps, else cpu."""
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(f"device '{device}': CUDA is not available on this machine (use --device cpu or auto)")
        return device
    if torch.cuda.is_available():
        return "cuda:0"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@dataclass(frozen=True)
class Detections:
    """One frame's detections: boxes (N,4) x1,y1,x2,y2 in pixels, scores (N,), class ids (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def as_sort_input(self) -> np.ndarray:
        """(N,6) [x1,y1,x2,y2,score,class] for Sort.update."""
        return np.column_stack([self.boxes, self.scores, self.class_ids]) if len(self) else np.empty((0, 6))


class ModelRunner:
    """One loaded model; `predict` takes a batch of BGR frames and returns Detections per frame."""

    def __init__(self, config: JobConfig, *, loaded: Any | None = None) -> None:
        """Load `config.model`, or use `loaded` (a YOLO already loaded from it) with this config's settings."""
        ensure_yolo_config_dir()
        self.device = resolve_device(config.device)
        self.half = bool(config.half and self.device.startswith("cuda"))
        self._predict_args: dict[str, Any] = {
            "conf": config.conf,
            "iou": config.iou,
            "classes": config.classes,
            "device": self.device,
            "verbose": False,
        }
        if self.half:
            self._predict_args["quantize"] = 16  # ultralytics >= 8.4 spells FP16 this way
        if config.imgsz is not None:
            self._predict_args["imgsz"] = config.imgsz
        self.model_name = config.model
        self.model = loaded if loaded is not None else _load(config.model)
        self.names: dict[int, str] = dict(self.model.names)

    def predict(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        try:
            results = self.model.predict(list(frames), **self._predict_args)
        except Exception as exc:  # noqa: BLE001 - any failure inside the model is reported as one line
            raise ModelError(f"model '{self.model_name}' failed on a batch of {len(frames)}: {exc}") from exc
        return [_detections(r) for r in results]

    def class_name(self, class_id: int) -> str:
        return self.names.get(int(class_id), str(int(class_id)))


def _load(model: str) -> Any:
    path = resolve_model_path(model)
    from ultralytics import YOLO  # heavy: imported only when a model is really needed

    try:
        return YOLO(path)
    except FileNotFoundError as exc:
        raise ModelError(f"model '{model}': not found and could not be downloaded ({exc})") from None
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"model '{model}': could not be loaded: {exc}") from None


def _detections(result: Any) -> Detections:
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections(np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int32))
    return Detections(
        boxes.xyxy.cpu().numpy().astype(np.float32),
        boxes.conf.cpu().numpy().astype(np.float32),
        boxes.cls.cpu().numpy().astype(np.int32),
    )
