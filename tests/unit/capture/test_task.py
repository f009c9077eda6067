"""The task's body: the familiar keyword arguments (or a StreamSpec) into a capture, and refusals as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidfleet_capture.task import run_capture_task, spec_from_kwargs, stream_name_for
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.errors import ConfigError, InputError
from vidfleet_common.settings import Settings
from vidfleet_common.streams import StreamSpec


@pytest.mark.parametrize(
    ("infile", "name"),
    [
        ("0", "webcam-0"),
        ("/data/cams/Front Door.mp4", "front-door"),
        ("rtsp://admin:pw@10.0.0.7:554/Streaming/101", "10-0-0-7-554-streaming-101"),
        ("http://cam.local/", "cam-local"),
        ("???", "stream"),
    ],
)
def test_a_stream_name_is_derived_from_the_source(infile: str, name: str) -> None:
    assert stream_name_for(infile) == name


def test_familiar_arguments_make_a_spec() -> None:
    keys = RedisKeys()
    spec = spec_from_kwargs(keys, infile="0", fps=10, output="vidfleet:frames:door", fmt=".png", quality=70, count=5)
    assert spec == StreamSpec(name="door", source="0", fps=10, codec="png", quality=70, count=5)
    assert spec_from_kwargs(keys, infile="/v/a.mp4", output="door").name == "door"
    assert spec_from_kwargs(keys, infile="/v/a.mp4").name == "a"


def test_a_stream_spec_wins_over_the_familiar_arguments() -> None:
    spec = spec_from_kwargs(RedisKeys(), infile="0", fps=99, stream={"name": "yard", "source": "/v/yard.mp4", "fps": 5, "loop": True})
    assert (spec.name, spec.source, spec.fps, spec.loop) == ("yard", "/v/yard.mp4", 5, True)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"infile": None}, InputError, "infile is required"),
        ({"infile": "0", "fmt": ".gif"}, ConfigError, "fmt '.gif': expected one of .jpg, .png"),
        ({"infile": "0", "output": "Frames:Cam"}, ConfigError, "output 'Frames:Cam': expected a stream name"),
        ({"infile": "0", "quality": 500}, ConfigError, "stream field 'quality'"),
        ({"stream": {"name": "x", "source": "0", "colour": "red"}}, ConfigError, "unknown stream field 'colour'"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        spec_from_kwargs(RedisKeys(), **kwargs)


def test_the_task_body_captures_and_returns_a_summary(capture_redis, client, keys: RedisKeys, capture_videos: dict[str, Path]) -> None:
    settings = Settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", key_prefix=keys.prefix, input_roots=[capture_videos["vga"].parent])
    urls: list[str | None] = []

    def redis_for(url: str | None):
        urls.append(url)
        return client

    result = run_capture_task(
        settings=settings, worker="w1", redis_for=redis_for, should_stop=lambda: False,
        infile=str(capture_videos["tiny"]), output="tiny", broker=capture_redis.url, fmt=".jpg", quality=60, maxlen=50, count=12,
    )

    assert result == {
        "stream": "tiny", "state": "ended", "reason": "count", "error": "", "frames": 12, "reconnects": 0, "seq": 11, "owner": "",
    }
    assert urls == [capture_redis.url]  # the broker override is the Redis the frames go to
    assert client.xlen(keys.frames("tiny")) == 12


def test_refused_arguments_end_the_task_as_data(keys: RedisKeys) -> None:
    settings = Settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    result = run_capture_task(
        settings=settings, worker="w1", redis_for=lambda url: pytest.fail("no Redis for refused arguments"),
        should_stop=lambda: False, infile="0", fmt=".bmp",
    )
    assert (result["state"], result["reason"], result["stream"]) == ("failed", "input", "webcam-0")
    assert "fmt '.bmp'" in result["error"]
