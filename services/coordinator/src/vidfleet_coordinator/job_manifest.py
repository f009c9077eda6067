"""`vidfleet job-manifest`: print a Kubernetes Job that submits a job to the fleet and waits for it.

The Job runs `vidfleet submit --wait INPUT...` in the coordinator image: it completes when the
vidfleet job succeeds and fails otherwise (exit status 1; backoffLimit 0, so a failed job is never
submitted twice). The job config rides in a pod annotation and reaches `--config` as a file through
a downwardAPI volume: one object, nothing left behind when the Job is deleted.

This module is the one source of the Job's shape: k8s/job.yaml is its output for example inputs.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import Any

import click

from vidfleet_common.errors import InputError
from vidfleet_common.settings import Settings
from vidfleet_coordinator.client_commands import _load_config

CONFIG_ANNOTATION = "vidfleet.io/job-config"
CONFIG_DIR = "/etc/vidfleet/job"
CONFIG_FILE = "config.json"
# The chart's defaults for a release named "vidfleet", and the plain manifests in k8s/base.
DEFAULT_SERVICE = "vidfleet-coordinator"
DEFAULT_TOKEN_SECRET = "vidfleet-api-token"
DEFAULT_TOKEN_KEY = "api-token"
IMAGE_REPOSITORY = "vidfleet/coordinator"
RUN_AS = 10001  # the vidfleet user of every image
TTL_SECONDS = 86_400
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def default_image() -> str:
    """The coordinator image of this very release (its tag is the chart's appVersion)."""
    return f"{IMAGE_REPOSITORY}:{version('vidfleet-coordinator')}"


def default_server() -> str:
    return f"http://{DEFAULT_SERVICE}:{Settings.model_fields['api_port'].default}"


def default_name(inputs: list[str], config: dict[str, Any] | None) -> str:
    """Derived from the inputs and config: the same job twice is refused by the API server (AlreadyExists)."""
    digest = hashlib.sha256(json.dumps([inputs, config], sort_keys=True).encode()).hexdigest()
    return f"vidfleet-job-{digest[:8]}"


def check_input(item: str) -> str:
    """A URL (s3://bucket/key, s3://bucket/prefix/, http(s)) or an absolute path as the fleet sees it (under its input roots)."""
    if "://" in item or PurePosixPath(item).is_absolute():
        return item
    raise InputError(f"input '{item}': give the path as the fleet sees it (absolute, under its input roots) or a URL")


def check_name(name: str, what: str = "name") -> str:
    # Job names become the pods' job-name label: a DNS label of at most 63 characters (namespaces too).
    if len(name) > 63 or not _DNS_LABEL.fullmatch(name):
        raise InputError(f"{what} '{name}': must be lower-case letters, digits and '-', at most 63 characters")
    return name


def job_manifest(
    inputs: list[str],
    config: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    namespace: str | None = None,
    image: str | None = None,
    server: str | None = None,
    token_secret: str = DEFAULT_TOKEN_SECRET,
    token_key: str = DEFAULT_TOKEN_KEY,
) -> dict[str, Any]:
    """The Job, as a mapping. `config` is a job config already validated (JobConfig); None: the fleet's defaults."""
    if not inputs:
        raise InputError("no inputs: give at least one video, folder or URL")
    inputs = [check_input(i) for i in inputs]
    name = check_name(name or default_name(inputs, config))
    labels = {"app.kubernetes.io/name": "vidfleet", "app.kubernetes.io/component": "submit", "app.kubernetes.io/part-of": "vidfleet"}
    command = ["vidfleet", "submit", "--wait"]
    pod_metadata: dict[str, Any] = {"labels": dict(labels)}
    volumes, mounts = [], []
    if config is not None:
        command += ["--config", f"{CONFIG_DIR}/{CONFIG_FILE}"]
        pod_metadata["annotations"] = {CONFIG_ANNOTATION: json.dumps(config, separators=(",", ":"))}
        volumes.append({
            "name": "job-config",
            "downwardAPI": {"items": [{"path": CONFIG_FILE, "fieldRef": {"fieldPath": f"metadata.annotations['{CONFIG_ANNOTATION}']"}}]},
        })
        mounts.append({"name": "job-config", "mountPath": CONFIG_DIR, "readOnly": True})
    container: dict[str, Any] = {
        "name": "submit",
        "image": image or default_image(),
        "imagePullPolicy": "IfNotPresent",
        "command": command + inputs,
        "env": [
            {"name": "VIDFLEET_SERVER", "value": server or default_server()},
            {"name": "VIDFLEET_API_TOKEN", "valueFrom": {"secretKeyRef": {"name": token_secret, "key": token_key}}},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if mounts:
        container["volumeMounts"] = mounts
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        # Service links would put VIDFLEET_COORDINATOR_PORT & co. into the environment: unknown settings.
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
    }
    if volumes:
        pod_spec["volumes"] = volumes
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        metadata["namespace"] = check_name(namespace, "namespace")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": pod_metadata, "spec": pod_spec},
        },
    }


def render(manifest: dict[str, Any], command_line: str | None = None) -> str:
    """YAML with a header that says how it was made, and how to run it and wait for it."""
    import yaml  # only this command needs it

    class IndentedDumper(yaml.SafeDumper):
        """Lists indented under their key, as kubectl and yamllint write them."""

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

    name = manifest["metadata"]["name"]
    ns = f" -n {manifest['metadata']['namespace']}" if "namespace" in manifest["metadata"] else ""
    header = (
        "# A vidfleet job as a Kubernetes Job, printed by\n"
        f"#   {command_line or 'vidfleet job-manifest'}\n"
        "# Run it and wait:\n"
        f"#   kubectl{ns} create -f job.yaml && kubectl{ns} wait --for=condition=complete --timeout=24h job/{name}\n"
        f"#   kubectl{ns} logs -f job/{name}    # progress, then the per-video table\n"
        "# It completes when every video succeeded and fails otherwise (--for=condition=failed sees that);\n"
        "# it is deleted a day after it ends.\n"
    )
    return header + yaml.dump(manifest, Dumper=IndentedDumper, sort_keys=False, width=1000)


@click.command("job-manifest")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help="Job config JSON (checked here, embedded in the Job)."
)
@click.option("--name", default=None, help="Job name (default: vidfleet-job-<hash of inputs and config>).")
@click.option("--namespace", default=None, help="Namespace of the Job (default: kubectl's current one).")
@click.option("--image", default=None, help=f"Coordinator image (default: {IMAGE_REPOSITORY}:<this version>).")
@click.option("--server", default=None, help=f"Coordinator URL as the Job's pod sees it (default: {default_server()}).")
@click.option("--token-secret", default=DEFAULT_TOKEN_SECRET, show_default=True, help="Secret holding the API token.")
@click.option("--token-key", default=DEFAULT_TOKEN_KEY, show_default=True, help="Key of the token in that Secret.")
def job_manifest_command(
    inputs: tuple[str, ...], config_file: Path | None, name: str | None, namespace: str | None,
    image: str | None, server: str | None, token_secret: str, token_key: str,
) -> None:
    """Print a Kubernetes Job that runs `vidfleet submit --wait` for INPUTS: absolute paths under the fleet's
    input roots, s3:// objects or prefixes in its input buckets, or http(s) URLs. Pipe it to `kubectl create -f -`."""
    config = _load_config(config_file) if config_file is not None else None
    try:
        manifest = job_manifest(
            list(inputs), config, name=name, namespace=namespace, image=image, server=server,
            token_secret=token_secret, token_key=token_key,
        )
    except InputError as exc:
        raise click.ClickException(str(exc)) from None
    options = [("--config", config_file), ("--name", name), ("--namespace", namespace), ("--image", image), ("--server", server)]
    options += [("--token-secret", token_secret if token_secret != DEFAULT_TOKEN_SECRET else None)]
    options += [("--token-key", token_key if token_key != DEFAULT_TOKEN_KEY else None)]
    argv = ["vidfleet", "job-manifest", *inputs] + [str(part) for flag, value in options if value is not None for part in (flag, value)]
    click.echo(render(manifest, shlex.join(argv)), nl=False)
