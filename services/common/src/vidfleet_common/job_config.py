"""The job config: what `vidfleet process` and every detect task run with.

Typed and strict: an unknown key or a value of the wrong type is a ConfigError naming the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vidfleet_common.counting import MAX_LINES, MAX_ZONES, LineSpec, ZoneSpec, check_definitions
from vidfleet_common.errors import ConfigError
from vidfleet_common.validation import describe_validation_error

DEFAULT_MODEL = "yolo11n.pt"


class JobConfig(BaseModel):
    """Detection, tracking and output options for one job."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # SORT
    max_age: int = Field(1, ge=0, description="Frames a track survives without a matched detection (SORT).")
    min_hits: int = Field(3, ge=0, description="Matched frames before a track is reported (SORT).")
    iou_threshold: float = Field(0.3, ge=0.0, le=1.0, description="Minimum IoU to match a detection to a track (SORT).")

    # Sampling and outputs
    skip_frames: int = Field(1, ge=1, description="Process every Nth frame (1 = every frame); the tracker sees only processed frames.")
    visualize: bool = Field(False, description="Write <video>.annotated.mp4 with boxes, track ids and class names.")
    output_folder: str | None = Field(None, description="Where outputs go; `--out` on the command line wins.")
    max_detections_in_memory: int = Field(10_000, ge=1, description="Detections buffered before they are flushed to disk.")
    save_intermediate_results: bool = Field(
        False, description="Keep a failed video's partial outputs (as *.partial.*) instead of removing them."
    )

    # Splitting one long video across workers (docs/splitting.md)
    split_seconds: float | None = Field(
        None, gt=0, description="Split each video into chunks of this many seconds, processed in parallel and stitched; null = whole. Off for videos shorter than two chunks."
    )
    split_overlap_seconds: float = Field(
        3.0, ge=0, le=600, description="Frames each chunk also reads before its start: its tracker warms up there and its tracks are matched with the previous chunk's."
    )

    # Model
    model: str = Field(DEFAULT_MODEL, min_length=1, description="Ultralytics checkpoint name or path to a .pt/.engine/.onnx file.")
    conf: float = Field(0.25, gt=0.0, le=1.0, description="Minimum detection confidence.")
    iou: float = Field(0.7, gt=0.0, le=1.0, description="IoU threshold of the model's non-maximum suppression.")
    imgsz: int | None = Field(None, ge=32, description="Inference size in pixels (multiple of 32); null = the model's own.")
    classes: list[int] | None = Field(None, description="Keep only these class ids; null = all.")
    device: str = Field("auto", min_length=1, description="'auto' (cuda when available), 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    half: bool = Field(False, description="FP16 inference (CUDA only).")
    batch: int = Field(4, ge=1, le=256, description="Frames per model call.")

    # Counting (docs/counting.md)
    lines: list[LineSpec] = Field(
        default_factory=list,
        description=f"Counting lines (at most {MAX_LINES}): {{name, points: [[x, y], [x, y]], directions?, classes?, anchor?, hysteresis?, units?}}.",
    )
    zones: list[ZoneSpec] = Field(
        default_factory=list,
        description=f"Counting zones (at most {MAX_ZONES}): {{name, polygon: [[x, y], ...], classes?, capacity?, anchor?, hysteresis?, units?}}.",
    )

    @field_validator("imgsz")
    @classmethod
    def _multiple_of_32(cls, value: int | None) -> int | None:
        if value is not None and value % 32:
            raise ValueError(f"imgsz must be a multiple of 32, got {value}")
        return value

    @field_validator("classes")
    @classmethod
    def _non_negative_classes(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(c < 0 for c in value):
            raise ValueError(f"class ids must be >= 0, got {value}")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        base = value.split(":", 1)[0]
        if base not in {"auto", "cpu", "cuda", "mps"} and not value.replace(",", "").isdigit():
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N, N or mps, got {value!r}")
        return value

    @field_validator("lines", "zones")
    @classmethod
    def _definitions(cls, value: list[LineSpec] | list[ZoneSpec], info: Any) -> list[Any]:
        check_definitions(value if info.field_name == "lines" else [], value if info.field_name == "zones" else [])
        return value

    @property
    def counting(self) -> bool:
        """Whether any line or zone is defined."""
        return bool(self.lines or self.zones)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> JobConfig:
        """Validate a mapping (e.g. parsed JSON). Raises ConfigError naming each bad key."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc)) from None

    @classmethod
    def from_file(cls, path: Path) -> JobConfig:
        """Read a JSON config file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_mapping(data)

    def merged(self, overrides: dict[str, Any]) -> JobConfig:
        """A copy with `overrides` (None values ignored) applied and validated."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return JobConfig.from_mapping(data)
