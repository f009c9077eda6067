"""`vidfleet submit | status | jobs | cancel | health | tasks`: the user's side of the coordinator API."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from vidfleet_common.errors import ConfigError, VidfleetError
from vidfleet_common.settings import load_settings
from vidfleet_coordinator.client import CoordinatorClient, ServerError

FINISHED = {"succeeded", "partial", "failed", "cancelled"}
POLL_SECONDS = 0.5
# `--wait` rides out a coordinator restart or a Redis restart (503) for this long before it gives up.
OUTAGE_SECONDS = 600.0

server_option = click.option("--server", envvar="VIDFLEET_SERVER", default=None, help="Coordinator URL (default: VIDFLEET_SERVER).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")


def _client(server: str | None) -> CoordinatorClient:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return CoordinatorClient(server or settings.server, token)


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except VidfleetError as exc:
        raise click.ClickException(str(exc)) from None


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    from vidfleet_common.job_config import JobConfig

    try:
        JobConfig.from_file(path)  # same one-line errors as the server, before anything is sent
        return json.loads(path.read_text(encoding="utf-8"))
    except (ConfigError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _input_for_server(item: str) -> str:
    """Paths that exist here are sent absolute (a local coordinator sees them); others as given."""
    if "://" not in item and os.path.exists(item):
        return os.path.abspath(item)
    return item


@click.command("submit")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help="Job config JSON.")
@click.option("--wait", is_flag=True, help="Show progress until the job ends; exit status follows the job.")
@server_option
@json_option
def submit_command(inputs: tuple[str, ...], config_file: Path | None, wait: bool, server: str | None, as_json: bool) -> None:
    """Submit a job: video files, folders under the fleet's input roots, s3://bucket/key objects and
    s3://bucket/prefix/ prefixes in the fleet's input buckets, or http(s) URLs."""
    client = _client(server)
    job = _call(client.submit, [_input_for_server(i) for i in inputs], _load_config(config_file))
    if not wait:
        click.echo(json.dumps(job, indent=2) if as_json else f"job {job['job_id']} submitted: {job['videos_total']} videos")
        return
    final = _follow(client, job["job_id"], quiet=as_json)
    if as_json:
        click.echo(json.dumps(final, indent=2))
    else:
        _print_job(final)
    sys.exit(0 if final["state"] == "succeeded" else 1)


def _follow(client: CoordinatorClient, job_id: str, *, quiet: bool) -> dict[str, Any]:
    """Poll until the job ends; one updating line on a terminal, a line per change otherwise."""
    tty = sys.stderr.isatty() and not quiet
    last = ""
    started = time.monotonic()
    outage_since: float | None = None
    while True:
        try:
            job = client.status(job_id)
            outage_since = None
        except ServerError as exc:
            if not exc.transient or (outage_since is not None and time.monotonic() - outage_since > OUTAGE_SECONDS):
                raise click.ClickException(str(exc)) from None
            if outage_since is None:
                outage_since = time.monotonic()
                if tty:
                    click.echo("", err=True)
                click.echo(f"{exc}; still waiting for job {job_id}", err=True)
            time.sleep(2 * POLL_SECONDS)
            continue
        line = _progress_line(job, time.monotonic() - started)
        if not quiet and line != last:
            click.echo(("\r\033[K" + line) if tty else line, err=True, nl=not tty)
            last = line
        if job["state"] in FINISHED:
            if tty:
                click.echo("", err=True)
            return job
        time.sleep(POLL_SECONDS)


def _progress_line(job: dict[str, Any], elapsed: float) -> str:
    done = job["videos_succeeded"] + job["videos_failed"] + job["videos_cancelled"]
    parts = [f"job {job['job_id']} {job['state']}: {done}/{job['videos_total']} videos done"]
    for key, word in (("videos_failed", "failed"), ("videos_running", "running"), ("videos_queued", "queued")):
        if job[key]:
            parts.append(f"{job[key]} {word}")
    parts.append(f"{job['frames_done']} frames")
    if elapsed >= 1:
        parts.append(f"{job['frames_done'] / elapsed:.1f} fps")
    return ", ".join(parts)


def _print_job(job: dict[str, Any]) -> None:
    click.echo(f"job {job['job_id']}: {job['state']}" + (f" - {job['message']}" if job.get("message") else ""))
    videos = job.get("videos") or []
    if videos:
        width = max(len(v["name"]) for v in videos)
        click.echo(f"  {'video':<{width}}  {'state':<9}  {'frames':>7}  error")
        for v in videos:
            click.echo(f"  {v['name']:<{width}}  {v['state']:<9}  {v['frames']:>7}  {v.get('error') or ''}".rstrip())
    click.echo(f"results: {job['result_file'] or job['out_dir']}")


@click.command("status")
@click.argument("job_id")
@server_option
@json_option
def status_command(job_id: str, server: str | None, as_json: bool) -> None:
    """A job's state, progress per video, errors and where its results are."""
    job = _call(_client(server).status, job_id)
    click.echo(json.dumps(job, indent=2)) if as_json else _print_job(job)


@click.command("jobs")
@click.option("--limit", type=int, default=20, show_default=True)
@server_option
@json_option
def jobs_command(limit: int, server: str | None, as_json: bool) -> None:
    """Recent jobs, newest first."""
    jobs = _call(_client(server).jobs, limit)
    if as_json:
        click.echo(json.dumps(jobs, indent=2))
        return
    click.echo(f"{'job':<12}  {'state':<10}  {'videos':>6}  {'ok':>4}  {'failed':>6}  {'created':<25}  message")
    for j in jobs:
        click.echo(
            f"{j['job_id']:<12}  {j['state']:<10}  {j['videos_total']:>6}  {j['videos_succeeded']:>4}  "
            f"{j['videos_failed']:>6}  {j['created_at']:<25}  {j['message']}".rstrip()
        )


@click.command("cancel")
@click.argument("job_id")
@server_option
def cancel_command(job_id: str, server: str | None) -> None:
    """Cancel a job: queued videos are revoked, running ones stop between batches."""
    job = _call(_client(server).cancel, job_id)
    click.echo(f"job {job['job_id']}: {job['state']}")


@click.command("health")
@server_option
@json_option
def health_command(server: str | None, as_json: bool) -> None:
    """Redis reachable, live workers per queue, queue depths. Exit status 1 unless ok."""
    health = _call(_client(server).health)
    if as_json:
        click.echo(json.dumps(health, indent=2))
    else:
        click.echo(f"status: {health['status']}  redis: {'up' if health['redis'] else 'DOWN'}")
        if health.get("error"):
            click.echo(f"  {health['error']}")
        for name, q in health.get("queues", {}).items():
            workers = ", ".join(q["workers"]) or "-"
            click.echo(f"  queue {name:<12} waiting {q['depth']:>5}  in flight {q['in_flight']:>5}  workers {len(q['workers'])}: {workers}")
    sys.exit(0 if health["status"] == "ok" else 1)


@click.command("tasks")
@server_option
@json_option
def tasks_command(server: str | None, as_json: bool) -> None:
    """Active and reserved tasks per worker, and tasks waiting in the queues."""
    tasks = _call(_client(server).tasks)
    if as_json:
        click.echo(json.dumps(tasks, indent=2))
        return
    for worker, kinds in sorted(tasks["workers"].items()):
        click.echo(f"{worker}:")
        for kind in ("active", "reserved"):
            for t in kinds.get(kind, []):
                click.echo(f"  {kind:<8} {t['id']}  {t.get('args') or t['name']}")
        if not any(kinds.values()):
            click.echo("  idle")
    for queue, waiting in tasks["queued"].items():
        click.echo(f"queue {queue}: {tasks['queued_total'].get(queue, len(waiting))} waiting")
        for t in waiting:
            click.echo(f"  queued   {t['id']}  {t.get('args') or t['name']}")


CLIENT_COMMANDS = (submit_command, status_command, jobs_command, cancel_command, health_command, tasks_command)
