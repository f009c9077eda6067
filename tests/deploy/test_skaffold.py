"""skaffold.yaml: valid against the skaffold v4beta14 schema with and without its profiles, builds the three
images from their Dockerfiles, and sets chart values that exist, for a release whose coordinator it forwards."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).resolve().parent / "schemas" / "skaffold" / "v4beta14.json"
CHART = REPO_ROOT / "charts" / "vidfleet"
IMAGES = {"vidfleet/capture": "capture", "vidfleet/detector": "detector", "vidfleet/coordinator": "coordinator"}


@cache
def skaffold() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())


def release() -> dict[str, Any]:
    (only,) = skaffold()["deploy"]["helm"]["releases"]
    return only


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def with_profiles(*names: str) -> dict[str, Any]:
    """The config with the profiles' JSON patches applied, as skaffold does (only the ops we use)."""
    config = copy.deepcopy(skaffold())
    profiles = {p["name"]: p for p in config.pop("profiles")}
    for name in names:
        for patch in profiles[name].get("patches", []):
            assert patch["op"] in ("add", "replace"), f"profile {name}: op {patch['op']} not handled here"
            *parents, last = _pointer(patch["path"])
            target: Any = config
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target[part]
            assert patch["op"] == "add" or last in target
            target[last] = patch["value"]
    return config


def chart_value_exists(key: str) -> bool:
    values: Any = yaml.safe_load((CHART / "values.yaml").read_text())
    for part in key.split("."):
        index = re.fullmatch(r"(.+)\[(\d+)\]", part)
        name = index[1] if index else part
        if not isinstance(values, dict) or name not in values:
            return False
        values = values[name]
        if index:
            if not isinstance(values, list):
                return False
            values = values[int(index[2])] if int(index[2]) < len(values) else None
    return True


def test_skaffold_validates_against_its_schema_with_every_profile(tmp_path: Path) -> None:
    names = [p["name"] for p in skaffold()["profiles"]]
    assert {"cpu", "local"} <= set(names)
    files = [REPO_ROOT / "skaffold.yaml"]
    for profile in [*([n] for n in names), names]:
        path = tmp_path / f"skaffold-{'-'.join(profile)}.yaml"
        path.write_text(yaml.safe_dump(with_profiles(*profile), sort_keys=False))
        files.append(path)
    check = Path(sys.executable).with_name("check-jsonschema")
    out = subprocess.run([str(check), "--schemafile", str(SCHEMA), *map(str, files)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert skaffold()["apiVersion"] == "skaffold/v4beta14"


def test_the_schema_check_catches_a_misspelt_field(tmp_path: Path) -> None:
    broken = copy.deepcopy(skaffold())
    broken["build"]["artifacts"][0]["docker"]["dockerFile"] = broken["build"]["artifacts"][0]["docker"].pop("dockerfile")
    path = tmp_path / "skaffold.yaml"
    path.write_text(yaml.safe_dump(broken))
    check = Path(sys.executable).with_name("check-jsonschema")
    out = subprocess.run([str(check), "--schemafile", str(SCHEMA), str(path)], capture_output=True, text=True)
    assert out.returncode == 1


def test_it_builds_the_three_images_from_the_repository_root() -> None:
    artifacts = {a["image"]: a for a in skaffold()["build"]["artifacts"]}
    assert set(artifacts) == set(IMAGES)
    for image, service in IMAGES.items():
        assert artifacts[image]["context"] == "."
        assert artifacts[image]["docker"]["dockerfile"] == f"services/{service}/Dockerfile"
        assert (REPO_ROOT / artifacts[image]["docker"]["dockerfile"]).is_file()


def test_built_images_go_into_chart_values_that_exist() -> None:
    templates = release()["setValueTemplates"]
    assert release()["chartPath"] == "charts/vidfleet"
    for image, service in IMAGES.items():
        var = re.sub(r"[^A-Za-z0-9]", "_", image)  # skaffold's IMAGE_REPO_<name>: non-alphanumerics become _
        assert templates[f"{service}.image.repository"] == f"{{{{.IMAGE_REPO_{var}}}}}"
        assert templates[f"{service}.image.tag"] == f"{{{{.IMAGE_TAG_{var}}}}}"
    for key in templates:
        assert chart_value_exists(key), key


@pytest.mark.parametrize("profile", ["cpu", "local"])
def test_profiles_set_chart_values_that_exist(profile: str) -> None:
    set_values = with_profiles(profile)["deploy"]["helm"]["releases"][0]["setValues"]
    assert set_values
    for key, value in set_values.items():
        assert chart_value_exists(key), key
        assert isinstance(value, str), f"{key}: skaffold passes setValues as strings"
    if profile == "cpu":
        assert set_values == {"gpu.enabled": "false"}


def test_port_forward_reaches_the_charts_coordinator_service() -> None:
    import helm_python as helm

    rel = release()
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values={}, name=rel["name"], namespace=rel["namespace"])
    services = {
        d["metadata"]["name"]: d
        for path, text in rendered.items()
        if text and not path.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text)
        if d and d["kind"] == "Service"
    }
    (forward,) = skaffold()["portForward"]
    assert forward["resourceType"] == "service" and forward["namespace"] == rel["namespace"]
    service = services[forward["resourceName"]]
    assert forward["port"] in [p["port"] for p in service["spec"]["ports"]]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "coordinator"
