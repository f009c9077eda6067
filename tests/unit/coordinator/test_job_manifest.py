import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from vidfleet_coordinator import cli
from vidfleet_coordinator.client_commands import submit_command
from vidfleet_coordinator.job_manifest import CONFIG_ANNOTATION, job_manifest

INPUTS = ["/data/inputs/videos", "s3://videos/cams/north/", "https://example.com/clips/a.mp4"]
CONFIG = {"model": "yolo11n.pt", "conf": 0.4, "skip_frames": 2, "visualize": True, "classes": [0, 2]}


def run(*args: str) -> Any:
    return CliRunner().invoke(cli.main, ["job-manifest", *args])


@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(CONFIG, indent=2))
    return path


def only_job(text: str) -> dict[str, Any]:
    (job,) = [d for d in yaml.safe_load_all(text) if d]
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    return job


@pytest.mark.parametrize("version", ["1.30.0", "1.31.0"])
@pytest.mark.parametrize("with_config", [True, False])
def test_the_printed_job_validates_strictly(version: str, with_config: bool, config_file: Path) -> None:
    args = [*INPUTS, "--namespace", "video"] + (["--config", str(config_file)] if with_config else [])
    result = run(*args)
    assert result.exit_code == 0, result.output
    job = only_job(result.output)
    assert kubernetes_validate.validate(job, version, strict=True) == version.rsplit(".", 1)[0]
    assert job["metadata"]["namespace"] == "video"


def test_the_job_submits_the_inputs_and_the_config_and_waits(config_file: Path) -> None:
    job = only_job(run(*INPUTS, "--config", str(config_file)).output)
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    command = container["command"]
    assert command[:3] == ["vidfleet", "submit", "--wait"] and command[-len(INPUTS):] == INPUTS
    assert json.loads(pod["metadata"]["annotations"][CONFIG_ANNOTATION]) == CONFIG
    # --config names the file that the downwardAPI volume writes from that annotation.
    (volume,) = pod["spec"]["volumes"]
    (item,) = volume["downwardAPI"]["items"]
    assert item["fieldRef"]["fieldPath"] == f"metadata.annotations['{CONFIG_ANNOTATION}']"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert command[command.index("--config") + 1] == f"{mount['mountPath']}/{item['path']}"
    # The submit command itself accepts that command line.
    ctx = submit_command.make_context("submit", command[2:])
    assert ctx.params["inputs"] == tuple(INPUTS) and ctx.params["wait"] is True
    assert str(ctx.params["config_file"]) == command[command.index("--config") + 1]


def test_the_job_runs_once_and_fails_with_the_vidfleet_job() -> None:
    job = only_job(run(*INPUTS).output)
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["ttlSecondsAfterFinished"] > 0
    assert "volumes" not in spec["template"]["spec"] and "--config" not in spec["template"]["spec"]["containers"][0]["command"]


def test_options_choose_name_image_server_and_token_secret() -> None:
    result = run(INPUTS[0], "--name", "nightly-01", "--image", "registry.example.com/vidfleet/coordinator:0.1.0",
                 "--server", "http://fleet.video.svc:8000", "--token-secret", "fleet-token", "--token-key", "token")
    job = only_job(result.output)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert job["metadata"]["name"] == "nightly-01"
    assert container["image"] == "registry.example.com/vidfleet/coordinator:0.1.0"
    assert env["VIDFLEET_SERVER"]["value"] == "http://fleet.video.svc:8000"
    assert env["VIDFLEET_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "fleet-token", "key": "token"}
    assert "job/nightly-01" in result.output.split("apiVersion:")[0]  # the header says how to wait for it


def test_the_default_name_follows_the_inputs_and_config() -> None:
    name = lambda inputs, config: job_manifest(inputs, config)["metadata"]["name"]  # noqa: E731
    assert name(INPUTS, CONFIG) == name(INPUTS, CONFIG)
    assert name(INPUTS, CONFIG) != name(INPUTS[:1], CONFIG) != name(INPUTS[:1], None)
    assert name(INPUTS, CONFIG).startswith("vidfleet-job-")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"conff": 0.5}', "Error: unknown config key 'conff'"),
        ('{"conf": "high"}', "Error: conf"),
        ('{"model": ', "not valid JSON"),
        (None, "Error: config file"),
    ],
)
def test_a_bad_config_is_one_line_and_no_manifest(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "job.json"
    if content is not None:
        path.write_text(content)
    result = run(INPUTS[0], "--config", str(path))
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and message in result.output
    assert "apiVersion" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["videos/a.mp4"], "Error: input 'videos/a.mp4': give the path as the fleet sees it"),
        ([INPUTS[0], "--name", "Nightly_Run"], "Error: name 'Nightly_Run': must be lower-case"),
        ([INPUTS[0], "--namespace", "x" * 64], "Error: namespace"),
    ],
)
def test_bad_inputs_and_names_are_one_line(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith(message)


# The Job's exit status is `vidfleet submit --wait`'s: 0 only when the vidfleet job succeeded.
