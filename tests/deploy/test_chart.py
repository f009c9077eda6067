"""The Helm chart lints, renders for every values set, and every object validates against its schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    SCHEMAS,
    SHARED_SCHEMAS,
    VALUE_SETS,
    Rendered,
    load_values,
    render_manifests,
    render_set,
)

KEDA_SCHEMAS = SCHEMAS / "keda" / "jsonschema"
OPERATOR_SCHEMAS = SCHEMAS / "prometheus-operator" / "jsonschema"
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): KEDA_SCHEMAS / "scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): KEDA_SCHEMAS / "triggerauthentication_v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): OPERATOR_SCHEMAS / "servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): OPERATOR_SCHEMAS / "podmonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): OPERATOR_SCHEMAS / "prometheusrule_v1.json",
}
CRD_GROUPS = ("keda.sh/", "monitoring.coreos.com/")


@pytest.mark.parametrize("value_set", VALUE_SETS)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_helm_lint_strict(value_set: str, kube_version: str) -> None:
    report = helm.lint(
        str(CHART), load_values(value_set), strict=True, namespace=NAMESPACE, kube_version=f"v{kube_version}"
    )
    problems = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == []


def test_builtin_objects_validate_strict(chart: Rendered) -> None:
    builtin = [o for o in chart.objects if not o["apiVersion"].startswith(CRD_GROUPS)]
    assert builtin, "nothing rendered"
    errors = []
    for obj in builtin:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                errors.append(f"{obj['kind']}/{obj['metadata']['name']} on {version}: {path}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(exc.message)
    assert errors == []


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "Service", "Secret", "NetworkPolicy"])
def test_kubernetes_validate_catches_a_misspelt_field(kind: str) -> None:
    """The strict validation above is not vacuous: a field Kubernetes does not know fails it."""
    obj = next(o for vs in ("default", "flower") for o in render_set(vs).objects if o["kind"] == kind)
    broken = json.loads(json.dumps(obj))
    broken["spec" if "spec" in broken else "metadata"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[0], strict=True)


def test_crd_objects_validate_against_upstream_schemas(chart: Rendered) -> None:
    custom = [o for o in chart.objects if o["apiVersion"].startswith(CRD_GROUPS)]
    errors = []
    for obj in custom:
        schema_file = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        assert schema_file is not None, f"no schema for {obj['apiVersion']} {obj['kind']}"
        validator = jsonschema.Draft7Validator(_schema(schema_file))
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        errors += [f"{where}: {e.json_path}: {e.message}" for e in validator.iter_errors(obj)]
    assert errors == []


def test_crd_objects_exist_when_their_features_are_on(chart: Rendered) -> None:
    kinds = {o["kind"] for o in chart.objects if o["apiVersion"].startswith(CRD_GROUPS)}
    expected = set()
    if chart.values["keda"]["enabled"]:
        expected.add("ScaledObject")
    if chart.values["monitoring"]["enabled"]:
        expected |= {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert expected <= kinds and not (kinds - expected - {"TriggerAuthentication"})


def test_keda_trigger_metadata_values_are_strings(chart: Rendered) -> None:
    for scaled in chart.of_kind("ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            not_strings = {k: v for k, v in trigger["metadata"].items() if not isinstance(v, str)}
            assert not_strings == {}, f"{scaled['metadata']['name']} {trigger['type']}"


def test_render_script_cli_writes_one_file_per_object(tmp_path: Path) -> None:
    values = CHART / "ci" / "ingress-values.yaml"
    assert render_manifests.main([str(CHART), str(tmp_path), "--values", str(values)]) == 0
    expected = [(o["kind"], o["metadata"]["name"]) for o in render_set("ingress").objects]
    per_kind = [yaml.safe_load(p.read_text()) for p in sorted(tmp_path.glob("*/*.yaml"))]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in per_kind) == sorted(expected)
    assert all(p.parent.name == yaml.safe_load(p.read_text())["kind"] for p in tmp_path.glob("*/*.yaml"))
    everything = [d for d in yaml.safe_load_all((tmp_path / "all.yaml").read_text()) if d]
    assert [(o["kind"], o["metadata"]["name"]) for o in everything] == expected


# values.schema.json

def _validate(values: dict[str, Any]) -> None:
    with helm.Chart.load(str(CHART)) as loaded:
        loaded.validate_schema(values)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"detector": {"replica": 2}}, "replica"),  # typo of replicas
        ({"gpu": {"enable": False}}, "enable"),  # typo of enabled
        ({"kedaa": {"enabled": False}}, "kedaa"),
        ({"gpu": {"count": "two"}}, "count"),
        ({"detector": {"terminationGracePeriodSeconds": "1h"}}, "terminationGracePeriodSeconds"),
        ({"keda": {"enabled": "yes"}}, "enabled"),
        ({"redis": {"enabled": False, "external": {"url": "http://redis:6379"}}}, "url"),
        ({"liveDetector": {"device": "gpu"}}, "device"),
        ({"detector": {"autoscaling": {"minReplicas": -1}}}, "minReplicas"),
        ({"capture": {"resources": {"limits": {"memory": "two gigs"}}}}, "memory"),
        ({"coordinator": {"image": {"pullPolicy": "Sometimes"}}}, "pullPolicy"),
        ({"storage": {"s3": {"outputRoot": "/data/results"}}}, "outputRoot"),
        ({"storage": {"s3": {"endpointUrl": "http://key:secret@minio:9000"}}}, "endpointUrl"),
        ({"storage": {"s3": {"addressingStyle": "dns"}}}, "addressingStyle"),
    ],
)
def test_values_schema_rejects_typos_and_wrong_types(values: dict[str, Any], named: str) -> None:
    with pytest.raises(helm.HelmValuesError) as excinfo:
        _validate(values)
    assert named in str(excinfo.value)


def test_values_schema_accepts_the_defaults_and_every_values_set() -> None:
    for value_set in VALUE_SETS:
        _validate(load_values(value_set))


def test_values_schema_forbids_unknown_keys_everywhere() -> None:
    """additionalProperties: false on every object the schema describes by its properties."""
    loose = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                loose.append(where)
            for key, child in node.items():
                walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{where}/{i}")

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    walk(schema, "#")
    assert loose == []


def test_every_values_key_is_documented() -> None:
    """A comment line right above every key of values.yaml (free-form maps and lists excepted)."""
    free_form = {
        "resources", "labels", "annotations", "podAnnotations", "nodeSelector", "namespaceSelector", "podSelector",
        "tolerations", "affinity", "hosts", "tls", "extraEnv", "imagePullSecrets", "extraRedisClients",
    }
    lines = (CHART / "values.yaml").read_text().splitlines()
    parents: list[tuple[int, str]] = []
    undocumented = []
    for number, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z0-9_.-]+):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        if not any(p in free_form for _, p in parents) and not lines[number - 1].strip().startswith("#"):
            undocumented.append(f"line {number + 1}: {key}")
        parents.append((indent, key))
    assert undocumented == []


# check-values.yaml: cross-field rules fail with a sentence

def _external(url: str, **more: Any) -> dict[str, Any]:
    return {"redis": {"enabled": False, "external": {"url": url, **more}}}


@pytest.mark.parametrize(
    ("values", "sentence"),
    [
        ({"redis": {"enabled": False}}, "redis.external.url is empty"),
        ({"redis": {"external": {"url": "redis://elsewhere:6379/0"}}}, "set redis.enabled=false"),
        (_external("redis://user:pw@elsewhere:6379/0"), "must not hold credentials"),
        (_external("redis://elsewhere:6379/zero"), "must be a database number"),
        (_external("redis://elsewhere", caSecret={"name": "ca", "key": "ca.crt"}), "a CA bundle only applies to TLS"),
        ({"detector": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}, "minReplicas (5) is greater"),
        ({"liveDetector": {"autoscaling": {"streamsPerDetector": 64}}}, "greater than liveDetector.maxStreams (32)"),
        ({"gpu": {"enabled": False}, "liveDetector": {"device": "cuda:0"}}, "gpu.enabled is false"),
        ({"config": {"visibilityTimeout": 600}}, "shorter than detector.terminationGracePeriodSeconds"),
        ({"storage": {"s3": {"credentials": {"existingSecret": "keys", "accessKeyId": "AKIA1"}}}}, "use one (the Secret is preferred)"),
        ({"storage": {"s3": {"credentials": {"accessKeyId": "AKIA1"}}}}, "accessKeyId and secretAccessKey go together"),
    ],
)
def test_inconsistent_values_fail_with_a_sentence(values: dict[str, Any], sentence: str) -> None:
    with pytest.raises(helm.HelmError) as excinfo:
        render_manifests.render_objects(CHART, values)
    assert sentence in str(excinfo.value)


# Monitoring content is embedded verbatim

def test_prometheus_rule_is_the_rule_file(chart: Rendered) -> None:
    rules = chart.of_kind("PrometheusRule")
    if not chart.values["monitoring"]["enabled"]:
        assert rules == []
        return
    (rule,) = rules
    assert rule["spec"] == yaml.safe_load((CHART / "rules" / "vidfleet.rules.yaml").read_text())
    for key, value in chart.values["monitoring"]["prometheusRule"]["labels"].items():
        assert rule["metadata"]["labels"][key] == value


def test_dashboards_configmaps_are_the_dashboard_files(chart: Rendered) -> None:
    files = {p.name: p for p in sorted((CHART / "dashboards").glob("*.json"))}
    assert files, "the chart ships no Grafana dashboards (charts/vidfleet/dashboards/*.json)"
    maps = [c for c in chart.of_kind("ConfigMap") if any(k.endswith(".json") for k in c.get("data", {}))]
    dashboards = chart.values["monitoring"]["dashboards"]
    if not (chart.values["monitoring"]["enabled"] and dashboards["enabled"]):
        assert maps == []
        return
    shipped = {key: text for c in maps for key, text in c["data"].items()}
    assert set(shipped) == set(files)
    for key, text in shipped.items():
        assert json.loads(text) == json.loads(files[key].read_text())
    for configmap in maps:
        assert dashboards["labels"].items() <= configmap["metadata"]["labels"].items()
        assert configmap["metadata"].get("namespace", NAMESPACE) == (dashboards["namespace"] or NAMESPACE)


def test_notes_tell_how_to_submit_a_first_job(chart: Rendered) -> None:
    coordinator = f"svc/{RELEASE}-coordinator"
    assert "vidfleet job-manifest" in chart.notes and "kubectl create -f job.yaml" in chart.notes
    assert f"port-forward {coordinator} 8000:{chart.values['coordinator']['service']['port']}" in chart.notes
    token_secret = chart.values["apiToken"]["existingSecret"] or f"{RELEASE}-api-token"
    assert f"get secret {token_secret}" in chart.notes


_SCHEMA_CACHE: dict[Path, dict[str, Any]] = {}


def _schema(path: Path) -> dict[str, Any]:
    if path not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[path] = json.loads(path.read_text())
    return _SCHEMA_CACHE[path]


def test_vendored_schemas_are_the_upstream_ones() -> None:
    vendored = sorted(p for p in SCHEMAS.rglob("*.json"))
    assert len(vendored) == 8, vendored  # 4 KEDA kinds, 3 Prometheus Operator kinds, skaffold
    for path in vendored:
        jsonschema.Draft7Validator.check_schema(json.loads(path.read_text()))
        shared = SHARED_SCHEMAS / path.relative_to(SCHEMAS)
        if SHARED_SCHEMAS.is_dir():  # next to the workspace copy; a lone clone has only the vendored files
            assert shared.read_bytes() == path.read_bytes(), f"{path} differs from {shared}"
