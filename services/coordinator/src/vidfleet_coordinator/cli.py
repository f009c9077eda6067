"""The `vidfleet` command. Commands owned by other services (the detector's `process` and
`track`) plug in through the `vidfleet.commands` entry point group, so this module never
imports detector code."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import click

from vidfleet_common.errors import ConfigError
from vidfleet_common.settings import load_settings, masked, unknown_env_vars

PLUGIN_GROUP = "vidfleet.commands"
# Commands that another distribution provides, and which one to install for them.
PLUGGED_COMMANDS = {"process": "vidfleet-detector", "track": "vidfleet-detector"}


def _missing(name: str, dist: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
    def command() -> None:
        raise click.ClickException(f"'vidfleet {name}' needs the detector: pip install {dist}")

    command.help = f"(not installed: needs {dist})"
    return command


class PluginGroup(click.Group):
    """A group whose extra commands come from entry points, loaded only when asked for."""

    def _plugins(self) -> dict[str, object]:
        return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()) | set(PLUGGED_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        plugin = self._plugins().get(name)
        if plugin is not None:
            return plugin.load()  # type: ignore[attr-defined]
        if name in PLUGGED_COMMANDS:
            return _missing(name, PLUGGED_COMMANDS[name])
        return None


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """vidfleet: YOLO detection and SORT tracking over videos, from a laptop to a GPU fleet."""


@main.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def config_command(as_json: bool) -> None:
    """Print the effective settings (from the environment), secrets masked."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    shown = masked(settings)
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    for key, value in shown.items():
        click.echo(f"{key:<22} {value}")
    for name in unknown_env_vars():
        click.echo(f"warning: unknown variable {name}", err=True)


def _add_client_commands() -> None:
    from vidfleet_coordinator.client_commands import CLIENT_COMMANDS
    from vidfleet_coordinator.job_manifest import job_manifest_command
    from vidfleet_coordinator.stream_commands import STREAM_COMMANDS

    for command in (*CLIENT_COMMANDS, job_manifest_command, *STREAM_COMMANDS):
        main.add_command(command)


_add_client_commands()
