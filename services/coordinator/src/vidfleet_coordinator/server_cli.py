"""`vidfleet-coordinator serve`: the HTTP API, the finalizer and the fleet's /metrics, in one process."""

from __future__ import annotations

import logging

import click

from vidfleet_common.errors import ConfigError
from vidfleet_common.settings import load_settings, masked


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """vidfleet coordinator."""


@main.command("serve")
@click.option("--host", default=None, help="Listen address (default: VIDFLEET_API_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default: VIDFLEET_API_PORT, 8000).")
@click.option("--no-auth", is_flag=True, help="Serve without an API token (local development only).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]), show_default=True)
def serve(host: str | None, port: int | None, no_auth: bool, log_level: str) -> None:
    """Serve the API: jobs, cancel, health, tasks, /metrics (OpenAPI at /docs)."""
    import uvicorn

    from vidfleet_coordinator.api import create_api

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.api_token is None and not no_auth:
        raise click.ClickException("no API token: set VIDFLEET_API_TOKEN (or pass --no-auth for local development)")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    shown = masked(settings)
    logging.getLogger("vidfleet.coordinator").info(
        "settings: broker %s, key prefix %s, input roots %s, output root %s, auth %s",
        shown["broker_url"], shown["key_prefix"], shown["input_roots"], shown["output_root"], "off" if settings.api_token is None else "on",
    )
    uvicorn.run(
        create_api(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=log_level,
        access_log=log_level == "debug",
    )


if __name__ == "__main__":
    main()
