"""The capture task's body: the familiar keyword arguments (or a StreamSpec) into a `capture()` call.

Failures are data: a bad argument or an unreadable source ends the task with state "failed" and
the reason (in the status hash when the stream has a name), never with an exception that a
retry policy would turn into a crash loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from vidfleet_common.contracts import RedisKeys
from vidfleet_common.errors import ConfigError, InputError
from vidfleet_common.settings import Settings, scrub_url
from vidfleet_common.streams import STREAM_NAME, StreamSpec
from vidfleet_common.validation import describe_validation_error
from vidfleet_capture.loop import CaptureResult, capture
from vidfleet_capture.metrics import CaptureMetrics

log = logging.getLogger("vidfleet.capture.task")

FORMATS = {".jpg": "jpg", "jpg": "jpg", ".jpeg": "jpg", "jpeg": "jpg", ".png": "png", "png": "png"}


def stream_name_for(infile: str) -> str:
    """A stream name derived from a source when the caller gave none: 'webcam-0', a file's stem, a URL's host and path."""
    text = str(infile).strip()
    if text.isdigit():
        return f"webcam-{int(text)}"
    text = re.sub(r"^[a-z][a-z0-9+.-]*://([^@/]*@)?", "", text, flags=re.IGNORECASE)  # scheme and credentials
    if "://" not in str(infile):
        text = text.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return slug[:63].rstrip("-_") or "stream"


def spec_from_kwargs(
    keys: RedisKeys,
    *,
    infile: str | int | None = None,
    fps: float | None = None,
    output: str | None = None,
    fmt: str = ".jpg",
    quality: int = 85,
    count: int | None = None,
    stream: dict[str, Any] | None = None,
) -> StreamSpec:
    """The StreamSpec to capture: `stream` when given (it wins), else one built from the familiar arguments."""
    try:
        if stream is not None:
            return StreamSpec.model_validate(stream)
        if infile is None or str(infile).strip() == "":
            raise InputError("infile is required: a webcam index ('0'), a video file or an rtsp/http(s) URL")
        codec = FORMATS.get(str(fmt).lower())
        if codec is None:
            raise ConfigError(f"fmt '{fmt}': expected one of .jpg, .png")
        name = _name_from_output(output, keys) if output else stream_name_for(str(infile))
        return StreamSpec(name=name, source=str(infile), fps=fps, codec=codec, quality=quality, count=count)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, what="stream field")) from None


def _name_from_output(output: str, keys: RedisKeys) -> str:
    name = output.removeprefix(keys.frames(""))
    if not STREAM_NAME.match(name):
        raise ConfigError(
            f"output '{output}': expected a stream name (1-63 lowercase letters, digits, '-' or '_') or {keys.frames('<name>')}"
        )
    return name


def run_capture_task(
    *,
    settings: Settings,
    worker: str,
    redis_for: Callable[[str | None], Any],
    should_stop: Callable[[], bool],
    metrics: CaptureMetrics | None = None,
    infile: str | int | None = None,
    fps: float | None = None,
    output: str | None = None,
    broker: str | None = None,
    fmt: str = ".jpg",
    quality: int = 85,
    maxlen: int | None = None,
    count: int | None = None,
    stream: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of the capture task; `redis_for(broker)` gives the client (the settings' Redis when None)."""
    keys = RedisKeys(settings.key_prefix)
    try:
        spec = spec_from_kwargs(keys, infile=infile, fps=fps, output=output, fmt=fmt, quality=quality, count=count, stream=stream)
        if maxlen is not None and int(maxlen) < 1:
            raise ConfigError(f"maxlen: expected a positive integer, got {maxlen!r}")
    except (ConfigError, InputError) as exc:
        message = scrub_url(str(exc))
        log.error("capture task refused: %s", message)
        return CaptureResult(_name_hint(stream, output, infile, keys), "failed", reason="input", error=message).as_dict()
    redis = redis_for(broker)
    result = capture(
        spec, redis, keys, worker=worker, should_stop=should_stop, metrics=metrics,
        maxlen=int(maxlen) if maxlen is not None else None, input_roots=settings.input_roots, url_schemes=settings.stream_url_schemes,
    )
    return result.as_dict()


def _name_hint(stream: dict[str, Any] | None, output: str | None, infile: Any, keys: RedisKeys) -> str:
    if isinstance(stream, dict) and isinstance(stream.get("name"), str):
        return stream["name"]
    if output:
        return output.removeprefix(keys.frames(""))
    return stream_name_for(str(infile)) if infile is not None else ""
