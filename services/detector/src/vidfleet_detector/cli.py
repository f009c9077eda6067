"""`vidfleet process` and `vidfleet track`: the detector's commands, plugged into the vidfleet CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from vidfleet_common.buckets import BucketUrlError, S3Url, inside_buckets, is_s3, join
from vidfleet_common.errors import ConfigError, VidfleetError
from vidfleet_common.job_config import JobConfig
from vidfleet_common.results import JobResult, VideoOutcome
from vidfleet_common.settings import Settings, load_settings

EXIT_FAILED_VIDEOS = 1
EXIT_USAGE = 2


class OneLineError(click.ClickException):
    """Printed as one line, exit status 2."""

    exit_code = EXIT_USAGE


def _classes(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(c) for c in value.split(",") if c.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated class ids, got {value!r}") from None


def build_config(config_file: Path | None, overrides: dict[str, Any]) -> JobConfig:
    """The config file (or defaults), with command-line flags on top."""
    base = JobConfig.from_file(config_file) if config_file else JobConfig()
    return base.merged(overrides)


@click.command("process")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", help="Output folder or s3://bucket/prefix/ (default: config output_folder, else ./results).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="Job config, JSON.")
@click.option("--model", help="Checkpoint name or path (vidfleet-shapes-n.pt is bundled).")
@click.option("--conf", type=float, help="Minimum detection confidence.")
@click.option("--iou", type=float, help="NMS IoU threshold.")
@click.option("--imgsz", type=int, help="Inference size (multiple of 32).")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--half/--no-half", default=None, help="FP16 inference (CUDA only).")
@click.option("--batch", type=int, help="Frames per model call.")
@click.option("--classes", callback=_classes, help="Comma-separated class ids to keep.")
@click.option("--visualize/--no-visualize", default=None, help="Write annotated MP4s.")
@click.option("--skip-frames", type=int, help="Process every Nth frame.")
@click.option("--max-age", type=int, help="SORT max_age.")
@click.option("--min-hits", type=int, help="SORT min_hits.")
@click.option("--iou-threshold", type=float, help="SORT IoU threshold.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def process_command(inputs: tuple[str, ...], out_dir: str | None, config_file: Path | None, quiet: bool, **flags: Any) -> None:
    """Detect and track objects in videos: files, folders (recursively), s3://bucket/key objects and
    s3://bucket/prefix/ prefixes (recursively), and http(s) URLs.

    Writes <video>.tracks.txt (MOT), <video>.detections.jsonl, <video>.annotated.mp4 (with
    --visualize), <video>.events.jsonl (with counting lines or zones in the config) and result.json under --out.
    """
    from vidfleet_detector.job import ResultNotSaved, run_job
    from vidfleet_detector.progress import TqdmProgress

    try:
        config = build_config(config_file, flags)
    except ConfigError as exc:
        raise OneLineError(str(exc)) from None
    try:
        settings = load_settings()
        out = _output(out_dir or config.output_folder or "results", settings)
    except ConfigError as exc:
        raise OneLineError(str(exc)) from None
    try:
        result = run_job(
            list(inputs), config, out, progress=lambda: TqdmProgress(enabled=not quiet), input_buckets=settings.input_buckets
        )
    except ConfigError as exc:  # a counting class the model does not have
        raise OneLineError(str(exc)) from None
    except ResultNotSaved as exc:  # every video ran, but the bucket would not take result.json
        _print_summary(exc.result, out)
        raise OneLineError(str(exc)) from None
    _print_summary(result, out)
    if not result.success:
        sys.exit(EXIT_FAILED_VIDEOS)


def _output(out: str | Path, settings: Settings) -> Path | str:
    """A folder, or an s3:// prefix (inside VIDFLEET_OUTPUT_BUCKETS when those are set)."""
    if not is_s3(out):
        return Path(out)
    try:
        url = S3Url.parse(str(out))
    except BucketUrlError as exc:
        raise ConfigError(str(exc)) from None
    if settings.output_buckets and not inside_buckets(url, settings.output_buckets):
        raise ConfigError(f"--out {url}: outside the output buckets ({', '.join(settings.output_buckets)})")
    return str(url) if url.is_prefix else f"{url}/"


def _print_summary(result: JobResult, out: Path | str) -> None:
    header = f"{'video':<28} {'outcome':<10} {'frames':>7} {'dets':>7} {'tracks':>6} {'fps':>7} {'secs':>7}"
    click.echo(header)
    click.echo("-" * len(header))
    for v in result.videos:
        click.echo(f"{v.name[:28]:<28} {v.outcome.value:<10} {v.frames:>7} {v.detections:>7} {v.tracks:>6} {v.fps:>7.1f} {v.seconds:>7.1f}")
    where = out if isinstance(out, str) else str(out.resolve())
    click.echo(f"\n{result.message}. Results in {where} (summary: {join(str(out), 'result.json')})")
    for v in result.videos:
        if v.outcome is not VideoOutcome.SUCCEEDED:
            click.echo(f"error: {v.name}: {v.error}", err=True)
        elif v.warning:
            click.echo(f"warning: {v.name}: {v.warning}", err=True)


@click.command("track")
@click.argument("det_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="MOT tracks file to write.")
@click.option("--max-age", type=int, default=1, show_default=True)
@click.option("--min-hits", type=int, default=3, show_default=True)
@click.option("--iou-threshold", type=float, default=0.3, show_default=True)
def track_command(det_file: Path, out_file: Path, max_age: int, min_hits: int, iou_threshold: float) -> None:
    """Run the SORT tracker alone on a MOT detection file (frame,-1,x,y,w,h,score,...)."""
    from vidfleet_detector.tracking import track_mot_file

    try:
        rows = track_mot_file(det_file, out_file, max_age=max_age, min_hits=min_hits, iou_threshold=iou_threshold)
    except FileNotFoundError:
        raise OneLineError(f"{det_file}: no such file") from None
    except (VidfleetError, ValueError, OSError) as exc:
        raise OneLineError(str(exc)) from None
    click.echo(f"{rows} track rows written to {out_file}")
