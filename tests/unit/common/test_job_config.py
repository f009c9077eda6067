import json
from pathlib import Path

import pytest

from vidfleet_common.errors import ConfigError
from vidfleet_common.job_config import JobConfig


def test_defaults_are_the_sort_reference_and_ultralytics_defaults() -> None:
    config = JobConfig()
    assert (config.max_age, config.min_hits, config.iou_threshold) == (1, 3, 0.3)
    assert (config.conf, config.iou, config.device, config.skip_frames) == (0.25, 0.7, "auto", 1)


@pytest.mark.parametrize(
    ("data", "must_mention"),
    [
        ({"iou_threshold": "high"}, ["iou_threshold", "a number", "'high'"]),
        ({"max_age": -1}, ["max_age", "greater than or equal to 0", "-1"]),
        ({"max_age": 1.5}, ["max_age", "an integer"]),
        ({"min_hits": "3"}, ["min_hits", "an integer", "'3'"]),
        ({"visualize": "yes"}, ["visualize", "true or false"]),
        ({"skip_frames": 0}, ["skip_frames", "greater than or equal to 1"]),
        ({"conf": 0}, ["conf", "greater than 0"]),
        ({"imgsz": 300}, ["imgsz", "multiple of 32"]),
        ({"classes": [0, -2]}, ["classes", ">= 0"]),
        ({"classes": "0,1"}, ["classes", "a list"]),
        ({"device": "tpu"}, ["device", "'tpu'"]),
        ({"max_detections_in_memory": 0}, ["max_detections_in_memory"]),
        ({"batch": 0}, ["batch"]),
        ({"iou_treshold": 0.3}, ["unknown config key 'iou_treshold'"]),
    ],
)
def test_bad_values_name_the_key_expected_and_actual(data: dict, must_mention: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        JobConfig.from_mapping(data)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in must_mention:
        assert fragment in message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        JobConfig.from_mapping({"max_age": -1, "bogus": 1})
    assert "max_age" in str(caught.value) and "bogus" in str(caught.value)


def test_int_is_accepted_for_float_fields() -> None:
    assert JobConfig.from_mapping({"iou_threshold": 1}).iou_threshold == 1.0


def test_old_config_json_keys_load(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    old = {"max_age": 5, "min_hits": 2, "iou_threshold": 0.2, "skip_frames": 2, "visualize": True,
           "output_folder": "out", "max_detections_in_memory": 100, "save_intermediate_results": True}
    path.write_text(json.dumps(old))
    config = JobConfig.from_file(path)
    assert config.model_dump(include=set(old)) == old


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_bad_config_files(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        JobConfig.from_file(path)


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.json"):
        JobConfig.from_file(tmp_path / "missing.json")


def test_merged_ignores_unset_flags_and_validates() -> None:
    config = JobConfig().merged({"conf": 0.5, "model": None})
    assert config.conf == 0.5 and config.model == JobConfig().model
    with pytest.raises(ConfigError, match="conf"):
        JobConfig().merged({"conf": 2.0})
