"""What every pod of the chart must be: locked down, sized, probed, drained gracefully, scheduled on GPUs (or not),
and wired to objects that exist."""

from __future__ import annotations

import base64
import re
from typing import Any

import yaml

from tests.deploy.conftest import CHART, Rendered, Workload

APP_UID = 10001
SCALED_COMPONENTS = ("capture", "detector", "live-detector")
COMPONENTS_WITH_PDB = ("capture", "detector", "live-detector", "coordinator")


def _pod_level(workload: Workload, key: str) -> Any:
    return workload.pod.get("securityContext", {}).get(key)


def test_every_container_is_locked_down(chart: Rendered) -> None:
    for workload in chart.workloads():
        pod = workload.pod
        assert pod.get("automountServiceAccountToken") is False, workload.name
        # A Service named vidfleet-* would put VIDFLEET_*_PORT variables into every pod: unknown settings.
        assert pod.get("enableServiceLinks") is False, workload.name
        assert not (pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC")), workload.name
        assert not any("hostPath" in v for v in pod.get("volumes", [])), workload.name
        for container in workload.containers():
            where = f"{workload.name}/{container['name']}"
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc.get("privileged", False) is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            seccomp = sc.get("seccompProfile") or _pod_level(workload, "seccompProfile")
            assert seccomp == {"type": "RuntimeDefault"}, where
            if workload.component in ("capture", "detector", "live-detector", "coordinator"):
                assert sc["runAsUser"] == APP_UID and _pod_level(workload, "runAsUser") == APP_UID, where
            # the root filesystem is read-only: /tmp must be a volume
            assert "/tmp" in [m["mountPath"] for m in container.get("volumeMounts", [])], where


def test_every_container_has_resources_and_probes(chart: Rendered) -> None:
    for workload in chart.workloads():
        for container in workload.containers():
            where = f"{workload.name}/{container['name']}"
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), where
            assert "memory" in container["resources"]["limits"], where
            assert "livenessProbe" in container and "readinessProbe" in container, where


def test_images_are_pinned(chart: Rendered) -> None:
    for workload in chart.workloads():
        for container in workload.containers():
            repository, _, tag = container["image"].rpartition(":")
            assert repository and re.search(r"\d", tag) and tag != "latest", container["image"]
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    detector, live = chart.values["detector"]["image"], chart.values["liveDetector"]["image"]
    expected = f"{live['repository'] or detector['repository']}:{live['tag'] or detector['tag'] or app_version}"
    assert chart.workload("live-detector").container["image"] == expected  # the detector image unless set


def test_gpu_scheduling_follows_the_gpu_values(chart: Rendered) -> None:
    gpu = chart.values["gpu"]
    for component in ("detector", "live-detector"):
        workload = chart.workload(component)
        limits = workload.container["resources"]["limits"]
        tolerations = workload.pod.get("tolerations", [])
        if gpu["enabled"]:
            assert limits[gpu["resourceName"]] == gpu["count"], component
            assert all(t in tolerations for t in gpu["tolerations"]), component
            assert gpu["nodeSelector"].items() <= workload.pod.get("nodeSelector", {}).items()
        else:
            assert gpu["resourceName"] not in limits, component
            assert not any(t in tolerations for t in gpu["tolerations"]), component
        # a new pod would wait for the GPU the old one holds
        assert workload.obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    live_args = chart.workload("live-detector").container["args"]
    device = live_args[live_args.index("--device") + 1]
    assert device == (chart.values["liveDetector"]["device"] if gpu["enabled"] else "cpu")
    for component in ("capture", "coordinator"):
        assert gpu["resourceName"] not in str(chart.workload(component).container["resources"])


def test_detectors_find_models_in_the_models_volume(chart: Rendered) -> None:
    for component in ("detector", "live-detector"):
        workload = chart.workload(component)
        container = workload.container
        assert container["workingDir"] == "/models"  # ultralytics downloads named weights into the working folder
        assert {"name": "YOLO_CONFIG_DIR", "value": "/tmp/ultralytics"} in container["env"]
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/models")
        volume = next(v for v in workload.pod["volumes"] if v["name"] == mount["name"])
        claim = chart.values["models"]["existingClaim"]
        if claim:
            assert volume["persistentVolumeClaim"]["claimName"] == claim
        else:
            assert "emptyDir" in volume and mount["readOnly"] is False


def test_batch_detectors_drain_gracefully(chart: Rendered) -> None:
    detector = chart.workload("detector")
    grace = detector.pod["terminationGracePeriodSeconds"]
    assert grace == chart.values["detector"]["terminationGracePeriodSeconds"] >= 600  # long enough for a video
    visibility = next(i["value"] for i in detector.container["env"] if i["name"] == "VIDFLEET_VISIBILITY_TIMEOUT")
    assert int(visibility) >= grace  # a video finishing during the drain is not handed to a second worker
    coordinator = chart.workload("coordinator").container
    assert coordinator["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"


def test_bundled_redis_is_persistent_and_password_protected(chart: Rendered) -> None:
    if not chart.values["redis"]["enabled"]:
        assert not chart.has_component("redis") and chart.of_kind("StatefulSet") == []
        return
    redis = chart.workload("redis")
    assert redis.kind == "StatefulSet"
    config = chart.get("ConfigMap", chart.name("redis"))["data"]["redis.conf"]
    assert re.search(r"^appendonly yes$", config, re.M) and re.search(r"^maxmemory-policy noeviction$", config, re.M)
    container = redis.container
    assert container["args"][container["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    refs = {i["name"]: i["valueFrom"]["secretKeyRef"] for i in container["env"]}
    assert refs["REDIS_PASSWORD"] == refs["REDISCLI_AUTH"]  # the probes authenticate with the same password
    assert "redis-cli" in " ".join(container["livenessProbe"]["exec"]["command"])
    claims = redis.obj["spec"].get("volumeClaimTemplates", [])
    persistent = chart.values["redis"]["persistence"]["enabled"]
    assert [c["metadata"]["name"] for c in claims] == (["data"] if persistent else [])
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    assert redis.pod["securityContext"]["runAsUser"] != 0


def test_secret_references_resolve(chart: Rendered) -> None:
    rendered = {s["metadata"]["name"]: {**s.get("data", {}), **s.get("stringData", {})} for s in chart.of_kind("Secret")}
    redis, v = chart.values["redis"], chart.values
    existing = {
        redis["auth"]["existingSecret"], redis["external"]["existingSecret"], redis["external"]["caSecret"]["name"],
        v["apiToken"]["existingSecret"], v["flower"]["basicAuthSecret"], v["storage"]["s3"]["credentials"]["existingSecret"],
    } - {""}
    refs: list[tuple[str, str | None]] = []
    for workload in chart.workloads():
        for container in workload.containers():
            refs += [(i["valueFrom"]["secretKeyRef"]["name"], i["valueFrom"]["secretKeyRef"]["key"])
                     for i in container.get("env", []) if "valueFrom" in i]
        refs += [(vol["secret"]["secretName"], None) for vol in workload.pod.get("volumes", []) if "secret" in vol]
    for auth in chart.of_kind("TriggerAuthentication"):
        refs += [(r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]]
    assert refs
    for name, key in refs:
        if name in rendered:
            assert key is None or key in rendered[name], f"secret {name} has no key {key}"
        else:
            assert name in existing, f"secret {name} is neither rendered nor configured as existing"


def test_generated_secrets_appear_nowhere_else(chart: Rendered) -> None:
    others = str([o for o in chart.objects if o["kind"] != "Secret"])
    for secret in chart.of_kind("Secret"):
        for value in secret.get("data", {}).values():
            plain = base64.b64decode(value).decode()
            assert len(plain) >= 16 and plain not in others


def test_redis_is_reachable_only_from_vidfleet_pods(chart: Rendered) -> None:
    policies = chart.of_kind("NetworkPolicy")
    if not (chart.values["redis"]["enabled"] and chart.values["networkPolicy"]["enabled"]):
        assert policies == []
        return
    (policy,) = policies
    redis = chart.workload("redis")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= redis.pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    peers = rule["from"]
    pod_peers = [p for p in peers if set(p) == {"podSelector"}]
    for workload in chart.workloads():
        if workload.component == "redis":
            continue
        labels = workload.pod_labels.items()
        assert any(p["podSelector"]["matchLabels"].items() <= labels for p in pod_peers), workload.name
    assert all(p["podSelector"]["matchLabels"].get("app.kubernetes.io/instance") == "vidfleet" for p in pod_peers)
    keda_peers = [p for p in peers if "namespaceSelector" in p]
    assert len(keda_peers) == (1 if chart.values["keda"]["enabled"] else 0)


def test_pdbs_and_services_select_existing_pods(chart: Rendered) -> None:
    pdbs = {p["metadata"]["name"]: p for p in chart.of_kind("PodDisruptionBudget")}
    for component in COMPONENTS_WITH_PDB:
        pdb = pdbs.pop(chart.name(component))
        selector = pdb["spec"]["selector"]["matchLabels"].items()
        matching = [w for w in chart.workloads() if selector <= w.pod_labels.items()]
        assert [w.component for w in matching] == [component]
        assert pdb["spec"]["maxUnavailable"] >= 1  # a drain can always proceed
    assert pdbs == {}
    for workload in chart.workloads():
        assert workload.obj["spec"]["selector"]["matchLabels"].items() <= workload.pod_labels.items()
    for service in chart.of_kind("Service"):
        selector = service["spec"]["selector"].items()
        matching = [w for w in chart.workloads() if selector <= w.pod_labels.items()]
        assert len(matching) == 1, service["metadata"]["name"]
        port_names = {p["name"] for c in matching[0].containers() for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_ingress_routes_to_the_coordinator(chart: Rendered) -> None:
    ingresses = chart.of_kind("Ingress")
    if not chart.values["ingress"]["enabled"]:
        assert ingresses == []
        return
    (ingress,) = ingresses
    service = chart.get("Service", chart.name("coordinator"))
    backends = [p["backend"]["service"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
    assert backends and all(b == {"name": service["metadata"]["name"], "port": {"name": "http"}} for b in backends)
    assert [r["host"] for r in ingress["spec"]["rules"]] == [h["host"] for h in chart.values["ingress"]["hosts"]]


def test_flower_points_at_the_broker(chart: Rendered) -> None:
    if not chart.values["flower"]["enabled"]:
        assert not chart.has_component("flower")
        return
    flower = chart.workload("flower").container
    coordinator = chart.workload("coordinator").container
    broker = {i["name"]: i.get("value") for i in flower["env"]}["CELERY_BROKER_URL"]
    assert broker.split("?")[0] == {i["name"]: i.get("value") for i in coordinator["env"]}["CELERY_BROKER_URL"]
    assert "FLOWER_BASIC_AUTH" in [i["name"] for i in flower["env"]]
    image = chart.values["flower"]["image"]
    assert flower["image"] == f"{image['repository']}:{image['tag']}"


def test_storage_is_shared_by_the_coordinator_and_the_detectors(chart: Rendered) -> None:
    def claims(workload: Workload) -> dict[str, str]:
        volumes = workload.pod["volumes"]
        return {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v}

    coordinator, detector = claims(chart.workload("coordinator")), claims(chart.workload("detector"))
    if chart.values["storage"]["s3"]["outputRoot"]:  # results go to a bucket: no outputs volume (test_chart_object_storage)
        assert "outputs" not in coordinator and "outputs" not in detector
        return
    assert coordinator["outputs"] == detector["outputs"]
    expected = chart.values["storage"]["outputs"]["existingClaim"]
    if expected:
        assert coordinator["outputs"] == expected and chart.of_kind("PersistentVolumeClaim") == []
    else:
        (claim,) = chart.of_kind("PersistentVolumeClaim")
        assert claim["metadata"]["name"] == coordinator["outputs"]
    if chart.values["storage"]["inputs"]["existingClaim"]:
        assert coordinator["inputs"] == detector["inputs"] == claims(chart.workload("capture"))["inputs"]
