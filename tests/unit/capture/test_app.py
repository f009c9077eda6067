"""The Celery app and the worker command, without a broker; and no torch anywhere in the capture service."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from vidfleet_common.contracts import Queue, TaskName
from vidfleet_common.settings import Settings


def test_the_capture_task_is_registered_on_the_capture_queue_and_acked_on_receipt() -> None:
    from vidfleet_capture.app import create_app

    app = create_app(Settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"))
    task = app.tasks[TaskName.CAPTURE_STREAM.value]
    assert task.acks_late is False
    assert app.amqp.router.route({}, TaskName.CAPTURE_STREAM.value)["queue"].name == Queue.CAPTURE.value
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]


def test_importing_the_capture_service_loads_no_torch() -> None:
    code = (
        "import sys, vidfleet_capture.cli, vidfleet_capture.app, vidfleet_capture.loop, vidfleet_capture.__main__;"
        "heavy = [m for m in ('torch', 'ultralytics', 'filterpy', 'vidfleet_detector') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_bad_setting_is_one_line_and_exit_2(monkeypatch) -> None:
    from vidfleet_capture.cli import main

    monkeypatch.setenv("VIDFLEET_METRICS_PORTT", "9")
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: unknown environment variable(s): VIDFLEET_METRICS_PORTT"
