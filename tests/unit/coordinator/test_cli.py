import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from vidfleet_coordinator import cli

HEAVY = ("torch", "ultralytics", "filterpy", "cv2")


@pytest.mark.parametrize(
    "module",
    ["vidfleet_coordinator.cli", "vidfleet_coordinator.api", "vidfleet_coordinator.server_cli", "vidfleet_capture", "vidfleet_common.fleet"],
)
def test_cpu_services_never_import_torch(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy = {"torch", "ultralytics", "filterpy"}
    assert not heavy & set(filter(None, out.stdout.strip().split(","))), out.stdout


def test_listing_commands_does_not_load_the_detector() -> None:
    code = "import sys; from vidfleet_coordinator.cli import main\n" \
           "try: main(['--help'])\nexcept SystemExit: pass\n" \
           "print('torch' in sys.modules or 'vidfleet_detector.pipeline' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")
    assert "process" in out.stdout and "track" in out.stdout


def test_a_command_of_an_uninstalled_service_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.PluginGroup, "_plugins", lambda self: {})
    result = CliRunner().invoke(cli.main, ["process", "videos/"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: 'vidfleet process' needs the detector: pip install vidfleet-detector"


def test_config_prints_settings_with_secrets_masked() -> None:
    env = {**os.environ, "CELERY_BROKER_URL": "redis://:hunter2@redis:6379/0", "VIDFLEET_API_TOKEN": "t0ken"}
    out = subprocess.run([sys.executable, "-m", "vidfleet_coordinator", "config", "--json"], env=env,
                         capture_output=True, text=True, check=True)
    shown = json.loads(out.stdout)
    assert shown["broker_url"] == "redis://***@redis:6379/0" and shown["api_token"] == "***"
    assert "hunter2" not in out.stdout + out.stderr and "t0ken" not in out.stdout + out.stderr


def test_config_refuses_an_unknown_variable_in_one_line() -> None:
    env = {**os.environ, "VIDFLEET_SERVR": "http://x"}
    out = subprocess.run([sys.executable, "-m", "vidfleet_coordinator", "config"], env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip() == "Error: unknown environment variable(s): VIDFLEET_SERVR"
