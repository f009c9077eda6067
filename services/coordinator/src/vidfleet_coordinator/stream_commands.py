"""`vidfleet streams add | ls | rm`, `vidfleet tracks tail` and `vidfleet events tail`: live streams through the coordinator."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from vidfleet_coordinator.client_commands import _call, _client, _load_config, json_option, server_option


@click.group("streams")
def streams_group() -> None:
    """Live streams: cameras and files captured into Redis, tracked by live detectors."""


@streams_group.command("add")
@click.argument("name")
@click.argument("source")
@click.option("--fps", type=float, default=None, help="Frames per second to capture (default: the source's).")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help="Detection config JSON (job config keys).")
@click.option("--retention", type=float, default=None, help="Seconds of video the frame stream keeps (default 10).")
@click.option("--policy", type=click.Choice(["latest", "all"]), default=None, help="When the detector falls behind (default latest).")
@click.option("--codec", type=click.Choice(["jpg", "png"]), default=None)
@click.option("--quality", type=int, default=None, help="JPEG quality (default 85).")
@click.option("--width", type=int, default=None, help="Resize frames to this width.")
@click.option("--loop", is_flag=True, help="Play a file source in a loop.")
@click.option("--no-realtime", is_flag=True, help="Read a file source as fast as possible instead of at its frame rate.")
@click.option("--webhook", default=None, help="http(s) URL that receives the counting events (a JSON POST per batch).")
@click.option("--max-events", type=int, default=None, help="Counting events the event stream keeps (default 10000).")
@server_option
def add_command(
    name: str, source: str, fps: float | None, config_file: Path | None, retention: float | None, policy: str | None,
    codec: str | None, quality: int | None, width: int | None, loop: bool, no_realtime: bool, webhook: str | None,
    max_events: int | None, server: str | None,
) -> None:
    """Want a stream NAME from SOURCE: a webcam index, an rtsp/http(s) URL, or a file under the input roots."""
    if "://" not in source and not source.isdigit() and os.path.exists(source):
        source = os.path.abspath(source)
    spec: dict[str, Any] = {"name": name, "source": source, "config": _load_config(config_file)}
    for key, value in (
        ("fps", fps), ("retention_seconds", retention), ("policy", policy), ("codec", codec), ("quality", quality), ("width", width),
        ("webhook", webhook), ("max_events", max_events),
    ):
        if value is not None:
            spec[key] = value
    if loop:
        spec["loop"] = True
    if no_realtime:
        spec["realtime"] = False
    added = _call(_client(server).add_stream, spec)
    click.echo(f"stream {added['name']} added ({added['source']}); state: {added['state']}")


@streams_group.command("ls")
@server_option
@json_option
def ls_command(server: str | None, as_json: bool) -> None:
    """Every wanted stream: state, capture fps, detector fps, lag, latency, errors."""
    streams = _call(_client(server).streams)
    if as_json:
        click.echo(json.dumps(streams, indent=2))
        return
    click.echo(f"{'stream':<16} {'state':<12} {'capture':>8} {'detect':>8} {'lag':>6} {'latency':>9} {'skipped':>8}  detector / error")
    for s in streams:
        tail = s.get("error") or s.get("detector") or "-"
        click.echo(
            f"{s['name']:<16} {s['state']:<12} {_num(s['capture_fps'], 'fps'):>8} {_num(s['detector_fps'], 'fps'):>8} "
            f"{_num(s['lag'], ''):>6} {_num(s['latency_ms'], 'ms'):>9} {s['skipped']:>8}  {tail}"
        )
        counted = s.get("counting_error") or _counts(s.get("counts"))
        if counted:
            click.echo(f"{'':<16} {counted}")


def _counts(counts: dict[str, Any] | None) -> str:
    """One line: `gate: in 3, out 1 · dock: 2 inside, 5 entries`."""
    if not counts:
        return ""
    parts = [f"{name}: " + ", ".join(f"{d} {n}" for d, n in line["crossings"].items()) for name, line in counts["lines"].items()]
    parts += [f"{name}: {zone['inside']} inside, {zone['entries']} entries" for name, zone in counts["zones"].items()]
    return " · ".join(parts)


def _num(value: float | int | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}{unit}" if isinstance(value, float) else f"{value}{unit}"


@streams_group.command("rm")
@click.argument("name")
@server_option
def rm_command(name: str, server: str | None) -> None:
    """Stop wanting NAME: its capture stops and its detector releases it.

    Once both have, its frame stream and status are deleted. Its tracks stream (…:tracks:NAME) is kept,
    for applications still reading it; adding NAME again appends to it.
    """
    _call(_client(server).remove_stream, name)
    click.echo(f"stream {name} removed")


@click.group("tracks")
def tracks_group() -> None:
    """Tracks of live streams."""


@tracks_group.command("tail")
@click.argument("name")
@click.option("--last", type=int, default=10, show_default=True, help="Start with this many of the latest messages.")
@click.option("--no-follow", is_flag=True, help="Print the latest messages and stop.")
@click.option("--seconds", type=float, default=None, help="Stop following after this long.")
@server_option
def tail_command(name: str, last: int, no_follow: bool, seconds: float | None, server: str | None) -> None:
    """Print NAME's tracks as they arrive, one JSON object per frame."""
    _print_ndjson(lambda: _client(server).tail_tracks(name, follow=not no_follow, last=last, seconds=seconds))


@click.group("events")
def events_group() -> None:
    """Counting events of live streams: line crossings, zone entries and exits."""


@events_group.command("tail")
@click.argument("name")
@click.option("--last", type=int, default=10, show_default=True, help="Start with this many of the latest events.")
@click.option("--no-follow", is_flag=True, help="Print the latest events and stop.")
@click.option("--seconds", type=float, default=None, help="Stop following after this long.")
@server_option
def events_tail_command(name: str, last: int, no_follow: bool, seconds: float | None, server: str | None) -> None:
    """Print NAME's counting events as they happen, one JSON object per event."""
    _print_ndjson(lambda: _client(server).tail_events(name, follow=not no_follow, last=last, seconds=seconds))


def _print_ndjson(messages: Callable[[], Iterator[dict[str, Any]]]) -> None:
    """One compact JSON object a line, until the server ends the stream or the user presses Ctrl-C."""

    def lines() -> None:
        for message in messages():
            click.echo(json.dumps(message, separators=(",", ":")))

    try:
        _call(lines)
    except KeyboardInterrupt:
        pass


STREAM_COMMANDS = (streams_group, tracks_group, events_group)
