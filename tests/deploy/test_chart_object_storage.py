"""Object storage in the chart: with buckets for inputs and outputs no shared volume is rendered, and the S3 keys
reach only the pods that read or write buckets, from a Secret or not at all (IRSA / workload identity)."""

from __future__ import annotations

import base64

from tests.deploy.conftest import render_set, render_manifests, CHART, RELEASE, NAMESPACE, Rendered


def _render(values: dict) -> list[dict]:
    texts = render_manifests.render_texts(CHART, values, name=RELEASE, namespace=NAMESPACE)
    return render_manifests.split_objects(t for p, t in sorted(texts.items()) if not p.endswith("NOTES.txt"))


def _env_names(workload) -> set[str]:  # noqa: ANN001
    return {item["name"] for item in workload.container["env"]}


def test_buckets_for_inputs_and_outputs_need_no_shared_volume() -> None:
    chart = render_set("object-storage")
    claims = [o for o in chart.objects if o["kind"] == "PersistentVolumeClaim"]
    assert claims == [], "no outputs claim when results go to a bucket"
    for workload in chart.workloads():
        volumes = workload.pod.get("volumes", [])
        claimed = [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v]
        assert claimed == [] or workload.component == "redis", (workload.name, claimed)
    detector = chart.workload("detector")
    (tmp,) = [v for v in detector.pod["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"]["sizeLimit"] == chart.values["storage"]["s3"]["stagingSizeLimit"], "outputs are staged in /tmp"


def test_keys_reach_only_the_coordinator_and_the_detectors_from_a_secret() -> None:
    chart = render_set("object-storage")
    secret = chart.values["storage"]["s3"]["credentials"]["existingSecret"]
    for component in ("coordinator", "detector"):
        env = {item["name"]: item for item in chart.workload(component).container["env"]}
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == secret
        assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == secret
    for component in ("capture", "live-detector"):
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & _env_names(chart.workload(component)), component
    account = next(o for o in chart.objects if o["kind"] == "ServiceAccount")
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]


def test_the_default_chart_has_no_keys_and_keeps_its_outputs_claim(chart: Rendered) -> None:
    if chart.values["storage"]["s3"]["outputRoot"]:
        return
    assert any(o["kind"] == "PersistentVolumeClaim" for o in chart.objects) or chart.values["storage"]["outputs"]["existingClaim"]
    if not chart.values["storage"]["s3"]["credentials"]["existingSecret"]:
        assert all("AWS_SECRET_ACCESS_KEY" not in _env_names(w) for w in chart.workloads() if w.component != "redis")


def test_keys_given_as_values_become_a_secret_never_plain_env() -> None:
    objects = _render({"storage": {"s3": {"outputRoot": "s3://results/", "credentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "wJalrEXAMPLEKEY"}}}})
    (secret,) = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == f"{RELEASE}-s3"]
    assert base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == "wJalrEXAMPLEKEY"
    for obj in objects:
        if obj["kind"] == "Deployment":
            assert "wJalrEXAMPLEKEY" not in str(obj), obj["metadata"]["name"]
