"""The plain manifests in k8s/ (kustomize base, GPU overlay, the Job template): they render, validate strictly
against Kubernetes 1.30 and 1.31, keep the security rules, and agree with what the services read and serve."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from vidfleet_common.settings import ENV_PREFIX, Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "k8s"
OVERLAYS = {"base": K8S / "base", "gpu": K8S / "overlays" / "gpu", "object-storage": K8S / "overlays" / "object-storage"}
KUBE_VERSIONS = ("1.30.0", "1.31.0")
# Read by processes in the images but not vidfleet settings: the broker password the URLs are built from,
# and NVIDIA's runtime switch that keeps CPU-only pods off the GPUs.
ALLOWED_OTHER_ENV = {
    "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_PASSWORD", "NVIDIA_VISIBLE_DEVICES", "YOLO_CONFIG_DIR", "PYTHONUNBUFFERED",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",  # S3 keys for boto3's standard chain (object-storage overlay)
}
# Fields that Kustomize v4 and v5 both understand (no v5-only fields, none that v5 deprecates).
KUSTOMIZE_FIELDS = {"apiVersion", "kind", "resources", "patches", "images", "namespace", "namePrefix", "nameSuffix", "components"}
GPU_COMPONENTS = ("detector", "live-detector")


def setting_env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(field.validation_alias if isinstance(field.validation_alias, str) else f"{ENV_PREFIX}{name}".upper())
    return names


@cache
def kustomize(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with Kustomize v4+) is needed to render k8s/: see ../shared/VERIFYING-DEPLOYMENT.md"
    out = subprocess.run([kubectl, "kustomize", str(OVERLAYS[overlay])], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def job_template() -> dict[str, Any]:
    (job,) = [d for d in yaml.safe_load_all((K8S / "job.yaml").read_text()) if d]
    return job


def workloads(overlay: str) -> dict[str, dict[str, Any]]:
    """component -> Deployment/StatefulSet."""
    return {
        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: o
        for o in kustomize(overlay)
        if o["kind"] in ("Deployment", "StatefulSet")
    }


def pods(overlay: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(name, w["spec"]["template"]["spec"]) for name, w in workloads(overlay).items()]
    return found + [("job", job_template()["spec"]["template"]["spec"])]


def pods_by_name(overlay: str) -> dict[str, dict[str, Any]]:
    return dict(pods(overlay))


def vidfleet_containers(overlay: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, c) for name, pod in pods(overlay) for c in pod["containers"] if c["image"].startswith("vidfleet/")]


def config_map(overlay: str, name: str) -> dict[str, str]:
    (found,) = [o for o in kustomize(overlay) if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name]
    return found["data"]


def container_env(overlay: str, container: dict[str, Any]) -> dict[str, str | None]:
    """Every variable the container gets: ConfigMaps via envFrom, then env (None for values from Secrets)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        env.update(config_map(overlay, source["configMapRef"]["name"]))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")
    return env


def named_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (found,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return found


# --- Rendering and schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("overlay", [*OVERLAYS, "job"])
def test_manifests_validate_strictly(overlay: str, version: str) -> None:
    objects = [job_template()] if overlay == "job" else kustomize(overlay)
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not errors


def test_the_strict_validation_catches_a_misspelt_field() -> None:
    deployment = json.loads(json.dumps(workloads("base")["coordinator"]))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.31.0", strict=True)


def test_base_holds_every_component_and_is_namespace_agnostic() -> None:
    assert set(workloads("base")) == {"redis", "coordinator", "capture", "detector", "live-detector"}
    assert {(o["kind"], o["metadata"]["name"]) for o in kustomize("base") if o["kind"] == "Service"} == {
        ("Service", "vidfleet-coordinator"), ("Service", "vidfleet-redis"),
    }
    assert [o["metadata"]["name"] for o in kustomize("base") if "namespace" in o["metadata"]] == []


@pytest.mark.parametrize("kustomization", sorted(K8S.rglob("kustomization.yaml")), ids=lambda p: str(p.relative_to(K8S)))
def test_kustomizations_use_fields_kustomize_v4_knows(kustomization: Path) -> None:
    assert set(yaml.safe_load(kustomization.read_text())) <= KUSTOMIZE_FIELDS


# --- Security, probes, resources ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_locked_down(overlay: str) -> None:
    for name, pod in pods(overlay):
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        # A Service named vidfleet-* would put VIDFLEET_*_PORT variables into every pod: unknown settings.
        assert pod["enableServiceLinks"] is False, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert sc["capabilities"] == {"drop": ["ALL"]}, (name, c["name"])
            assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"], (name, c["name"])
            if name != "job":
                assert "livenessProbe" in c and "readinessProbe" in c, (name, c["name"])
        if name != "job":
            mounts = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: the read-only root filesystem needs a writable /tmp"
    for name, container in vidfleet_containers(overlay):
        if name != "job":
            assert pods_by_name(overlay)[name]["securityContext"]["runAsUser"] == 10001


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_tagged_with_the_app_version(overlay: str) -> None:
    from importlib.metadata import version

    app_version = yaml.safe_load((REPO_ROOT / "charts" / "vidfleet" / "Chart.yaml").read_text())["appVersion"]
    assert app_version == version("vidfleet-coordinator")
    images = {c["image"] for _, c in vidfleet_containers(overlay)}
    assert images == {f"vidfleet/{s}:{app_version}" for s in ("capture", "detector", "coordinator")}


def test_coordinator_port_and_probe_paths_are_what_the_api_serves() -> None:
    from vidfleet_coordinator.api import create_api

    routes = {getattr(r, "path", None) for r in create_api(Settings(), run_background=False).routes}
    coordinator = workloads("base")["coordinator"]["spec"]["template"]["spec"]["containers"][0]
    env = container_env("base", coordinator)
    port = int(env.get("VIDFLEET_API_PORT") or Settings.model_fields["api_port"].default)
    assert port == Settings.model_fields["api_port"].default
    assert env["VIDFLEET_API_HOST"] == "0.0.0.0"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http = coordinator[probe]["httpGet"]
        assert http["path"] in routes and named_port(coordinator, http["port"]) == port, probe
    assert coordinator["livenessProbe"]["httpGet"]["path"] == "/livez"  # never restarted for a Redis outage
    (service,) = [o for o in kustomize("base") if o["kind"] == "Service" and o["metadata"]["name"] == "vidfleet-coordinator"]
    assert named_port(coordinator, service["spec"]["ports"][0]["targetPort"]) == port


@pytest.mark.parametrize("component", ["capture", "detector", "live-detector"])
def test_worker_ports_and_probes_are_the_metrics_port(component: str) -> None:
    container = workloads("base")[component]["spec"]["template"]["spec"]["containers"][0]
    env = container_env("base", container)
    port = int(env.get("VIDFLEET_METRICS_PORT") or Settings.model_fields["metrics_port"].default)
    assert port == Settings.model_fields["metrics_port"].default
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for probe in ("livenessProbe", "readinessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/metrics" and named_port(container, http["port"]) == port


# --- Environment -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_env_var_is_one_the_services_read(overlay: str) -> None:
    known = setting_env_names() | ALLOWED_OTHER_ENV
    for name, container in vidfleet_containers(overlay):
        unknown = set(container_env(overlay, container)) - known
        assert not unknown, f"{name}: {sorted(unknown)} are read by nothing"


@pytest.mark.parametrize("component", ["coordinator", "capture", "detector", "live-detector"])
def test_settings_load_from_the_manifest_environment(component: str, monkeypatch: pytest.MonkeyPatch) -> None:
    container = workloads("base")[component]["spec"]["template"]["spec"]["containers"][0]
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX) or k.startswith("CELERY_")]:
        monkeypatch.delenv(key)
    for key, value in container_env("base", container).items():
        # $(REDIS_PASSWORD) is expanded by the kubelet from the Secret.
        monkeypatch.setenv(key, (value or "s3cret").replace("$(REDIS_PASSWORD)", "s3cret"))
    settings = load_settings()
    assert settings.broker_url.get_secret_value() == "redis://:s3cret@vidfleet-redis:6379/0"
    assert [str(p) for p in settings.input_roots] == ["/data/inputs"]
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    if component in ("coordinator", "detector"):
        assert str(settings.output_root) in mounts and not mounts[str(settings.output_root)].get("readOnly")
        assert mounts["/data/inputs"]["readOnly"] is True


def test_broker_urls_point_at_the_redis_service_with_its_secret() -> None:
    redis = workloads("base")["redis"]["spec"]["template"]["spec"]["containers"][0]
    redis_secret = next(e["valueFrom"]["secretKeyRef"] for e in redis["env"] if e["name"] == "REDIS_PASSWORD")
    assert redis["args"][redis["args"].index("--appendonly") + 1] == "yes"
    assert redis["args"][redis["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    for name, container in vidfleet_containers("base"):
        if name == "job":
            continue
        env = {e["name"]: e for e in container["env"]}
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == redis_secret, name
        names = [e["name"] for e in container["env"]]
        assert names.index("REDIS_PASSWORD") < names.index("CELERY_BROKER_URL"), f"{name}: $(REDIS_PASSWORD) must be defined first"


# --- CPU by default, GPUs in the overlay -------------------------------------------------------------------


@pytest.mark.parametrize("component", GPU_COMPONENTS)
def test_base_is_cpu_only_and_the_overlay_gives_each_detector_a_gpu(component: str) -> None:
    cpu = workloads("base")[component]["spec"]["template"]["spec"]
    gpu = workloads("gpu")[component]["spec"]["template"]["spec"]
    (cpu_c,), (gpu_c,) = cpu["containers"], gpu["containers"]
    assert "nvidia.com/gpu" not in cpu_c["resources"].get("limits", {})
    assert container_env("base", cpu_c)["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert gpu_c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "NVIDIA_VISIBLE_DEVICES" not in container_env("gpu", gpu_c)
    assert gpu["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"])
    if component == "live-detector":
        device = lambda c: c["args"][c["args"].index("--device") + 1]  # noqa: E731
        assert (device(cpu_c), device(gpu_c)) == ("cpu", "cuda")
    others = {k: v for k, v in workloads("gpu").items() if k not in GPU_COMPONENTS}
    assert others == {k: v for k, v in workloads("base").items() if k not in GPU_COMPONENTS}


# --- The Job template --------------------------------------------------------------------------------------


def test_job_yaml_is_what_vidfleet_job_manifest_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidfleet_coordinator.cli import main

    text = (K8S / "job.yaml").read_text()
    argv = shlex.split(text.splitlines()[1].lstrip("# "))
    assert argv[:2] == ["vidfleet", "job-manifest"]
    monkeypatch.chdir(REPO_ROOT)
    result = CliRunner().invoke(main, argv[1:])
    assert result.exit_code == 0, result.output
    assert result.output == text, "k8s/job.yaml is stale: regenerate it with the command on its second line"


def test_job_reaches_the_coordinator_and_its_token_as_deployed() -> None:
    job = job_template()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    coordinator = workloads("base")["coordinator"]["spec"]["template"]["spec"]["containers"][0]
    token_ref = next(e["valueFrom"]["secretKeyRef"] for e in coordinator["env"] if e["name"] == "VIDFLEET_API_TOKEN")
    assert env["VIDFLEET_API_TOKEN"]["valueFrom"]["secretKeyRef"] == token_ref
    (service,) = [o for o in kustomize("base") if o["kind"] == "Service" and o["metadata"]["name"] == "vidfleet-coordinator"]
    assert env["VIDFLEET_SERVER"]["value"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert container["command"][:3] == ["vidfleet", "submit", "--wait"]


def test_job_manifest_defaults_reach_a_chart_release_named_vidfleet() -> None:
    import helm_python as helm

    from vidfleet_coordinator.job_manifest import job_manifest

    with helm.Chart.load(str(REPO_ROOT / "charts" / "vidfleet")) as chart:
        rendered = chart.render(values={}, name="vidfleet", namespace="video")
    objects = [d for p, t in rendered.items() if t and not p.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d]
    (service,) = [o for o in objects if o["kind"] == "Service" and o["spec"]["selector"].get("app.kubernetes.io/component") == "coordinator"]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == service["metadata"]["name"]]
    coordinator = deployment["spec"]["template"]["spec"]["containers"][0]
    token_ref = next(e["valueFrom"]["secretKeyRef"] for e in coordinator["env"] if e["name"] == "VIDFLEET_API_TOKEN")
    (container,) = job_manifest(["/data/inputs/a.mp4"])["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["VIDFLEET_API_TOKEN"]["valueFrom"]["secretKeyRef"] == token_ref
    assert env["VIDFLEET_SERVER"]["value"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert container["image"] == coordinator["image"]


# --- YAML lint ---------------------------------------------------------------------------------------------


def test_yamllint_passes_on_the_repository() -> None:
    yamllint = Path(sys.executable).with_name("yamllint")
    out = subprocess.run([str(yamllint), "-s", "."], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("component", ["coordinator", "detector"])
def test_the_object_storage_overlay_needs_no_shared_volume(component: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = kustomize("object-storage")
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"] == []
    pod = workloads("object-storage")[component]["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"] if "persistentVolumeClaim" in v] == []
    container = pod["containers"][0]
    keys = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if e["name"].startswith("AWS_")}
    assert set(keys) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} and all(k["optional"] for k in keys.values()), "IRSA: no Secret"
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX) or k.startswith("CELERY_")]:
        monkeypatch.delenv(key)
    for key, value in container_env("object-storage", container).items():
        monkeypatch.setenv(key, ("s3cret" if value is None else value).replace("$(REDIS_PASSWORD)", "s3cret"))
    settings = load_settings()
    assert str(settings.output_root).startswith("s3://") and settings.input_buckets and settings.input_roots == []
