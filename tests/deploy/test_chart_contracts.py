"""The chart agrees with the code: queues, Redis keys, ports, probe paths, settings and metric names come from
vidfleet_common and the services, never respelt here."""

from __future__ import annotations

import re
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.conftest import NAMESPACE, Rendered, Workload
from vidfleet_common import metric_names
from vidfleet_common.contracts import Queue, RedisKeys, TaskName
from vidfleet_common.fleet import celery_config
from vidfleet_common.settings import ENV_PREFIX, Settings, load_settings

# Variables the chart sets that are not vidfleet settings, and why.
EXTRA_ENV = {
    "REDIS_PASSWORD": "expanded by the kubelet into CELERY_BROKER_URL as $(REDIS_PASSWORD)",
    "YOLO_CONFIG_DIR": "ultralytics' settings folder (the root filesystem is read-only)",
    "AWS_ACCESS_KEY_ID": "static S3 keys for boto3's standard credential chain, from a Secret (storage.s3.credentials)",
    "AWS_SECRET_ACCESS_KEY": "static S3 keys for boto3's standard credential chain, from a Secret (storage.s3.credentials)",
}
VIDFLEET_COMPONENTS = ("capture", "detector", "live-detector", "coordinator")
WORKER_COMPONENTS = ("capture", "detector", "live-detector")
FAKE_SECRET = "s3cretvalue"


@cache
def _settings_defaults() -> Settings:
    return Settings()


@cache
def _coordinator_get_routes() -> frozenset[str]:
    from vidfleet_coordinator.api import create_api

    api = create_api(Settings(), run_background=False)  # builds the routes; touches no Redis
    return frozenset(path for path, item in api.openapi()["paths"].items() if "get" in item)


def _celery_queues() -> set[str]:
    """Queues the vidfleet Celery apps route tasks to."""
    routes = celery_config(_settings_defaults())["task_routes"]
    return {route["queue"] for route in routes.values()}


def _keys(chart: Rendered) -> RedisKeys:
    return RedisKeys(chart.values["config"]["keyPrefix"])


def _arg(container: dict[str, Any], option: str) -> str:
    args = container["args"]
    return args[args.index(option) + 1]


def _env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the process sees it: secrets faked, $(VAR) expanded like the kubelet does
    (only from variables defined earlier in the list; anything else stays literal)."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), item["value"])
        else:
            assert "secretKeyRef" in item["valueFrom"], f"{item['name']}: only secrets are referenced"
            env[item["name"]] = FAKE_SECRET
    return env


def _scaled_object(chart: Rendered, component: str) -> dict[str, Any]:
    return chart.get("ScaledObject", chart.name(component))


def _triggers(chart: Rendered, component: str, kind: str) -> list[dict[str, Any]]:
    return [t for t in _scaled_object(chart, component)["spec"]["triggers"] if t["type"] == kind]


def _keda(chart: Rendered) -> bool:
    """Whether KEDA is on; when it is off, there must be no KEDA object at all."""
    if not chart.values["keda"]["enabled"]:
        assert chart.of_kind("ScaledObject") == [] and chart.of_kind("TriggerAuthentication") == []
        return False
    return True


# Settings: every variable set is one the settings read, and they load

def test_every_env_var_is_a_setting_or_documented(chart: Rendered) -> None:
    aliases = {f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)}
    known = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields} | aliases | set(EXTRA_ENV)
    for component in VIDFLEET_COMPONENTS:
        names = [item["name"] for item in chart.workload(component).container["env"]]
        assert sorted(set(names) - known) == [], component
        assert len(names) == len(set(names)), f"{component}: a variable is set twice"


@pytest.mark.parametrize("component", VIDFLEET_COMPONENTS)
def test_the_environment_loads_as_settings(chart: Rendered, component: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith((ENV_PREFIX, "CELERY_")):
            monkeypatch.delenv(name)
    container = chart.workload(component).container
    env = _env(container)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()  # raises on an unknown VIDFLEET_* variable or a value that does not parse
    broker = settings.broker_url.get_secret_value()
    assert "$(" not in broker, "a $(VAR) the kubelet would leave unexpanded"
    assert settings.key_prefix == chart.values["config"]["keyPrefix"]
    s3 = chart.values["storage"]["s3"]
    assert str(settings.output_root) == (s3["outputRoot"] or chart.values["storage"]["outputs"]["mountPath"])
    assert settings.input_buckets == s3["inputBuckets"] and settings.s3_addressing_style == s3["addressingStyle"]
    assert settings.s3_endpoint_url == (s3["endpointUrl"] or None) and settings.s3_region == (s3["region"] or None)
    assert settings.visibility_timeout == chart.values["config"]["visibilityTimeout"]
    inputs = chart.values["storage"]["inputs"]
    assert [str(p) for p in settings.input_roots] == ([inputs["mountPath"]] if inputs["existingClaim"] else [])
    if any(i["name"] == "REDIS_PASSWORD" for i in container["env"]):
        assert f":{FAKE_SECRET}@" in broker
    if component == "coordinator":
        assert settings.api_token is not None and settings.api_host == "0.0.0.0"
    if settings.redis_ca_file is not None:
        mounts = [m["mountPath"] for m in container["volumeMounts"]]
        assert any(str(settings.redis_ca_file).startswith(f"{m}/") for m in mounts), "CA file not on a mounted volume"


def test_no_celery_result_backend(chart: Rendered) -> None:
    """Celery reads CELERY_RESULT_BACKEND from the environment over the apps' `result_backend: None`."""
    assert celery_config(_settings_defaults())["result_backend"] is None
    for workload in chart.workloads():
        for container in workload.containers():
            assert "CELERY_RESULT_BACKEND" not in [i["name"] for i in container.get("env", [])], workload.name


def test_no_password_in_plain_env(chart: Rendered) -> None:
    for workload in chart.workloads():
        for container in workload.containers():
            for item in container.get("env", []):
                value = item.get("value", "")
                parts = urlsplit(value) if "://" in value else None
                if parts and parts.password is not None:
                    assert parts.password == "$(REDIS_PASSWORD)", f"{workload.name}: {item['name']} holds a password"


# Queues and Redis keys in the KEDA triggers

def test_detector_scales_on_the_in_flight_set_of_its_queue(chart: Rendered) -> None:
    if not _keda(chart):
        return
    (trigger,) = _triggers(chart, "detector", "redis")
    queue = _arg(chart.workload("detector").container, "--queues")
    assert queue == Queue.DETECT
    assert queue in _celery_queues()
    assert celery_config(_settings_defaults())["task_routes"][TaskName.DETECT_VIDEO]["queue"] == queue
    # ZCARD of the in-flight set (queued + reserved + running), not LLEN of the Celery list `detect`.
    assert trigger["metadata"]["listName"] == _keys(chart).in_flight(Queue(queue))
    auto = chart.values["detector"]["autoscaling"]
    per_worker = auto["videosPerWorker"] or chart.values["detector"]["concurrency"]
    assert trigger["metadata"]["listLength"] == str(per_worker)
    assert trigger["metadata"]["activationListLength"] == str(auto["activationVideos"])


def test_every_queue_in_a_trigger_is_a_celery_queue(chart: Rendered) -> None:
    if not _keda(chart):
        return
    keys = _keys(chart)
    registry = keys.stream_registry()
    in_flight_prefix = keys.in_flight("")
    for scaled in chart.of_kind("ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            if trigger["type"] != "redis":
                continue
            name = trigger["metadata"]["listName"]
            if name == registry:
                continue
            assert name.startswith(in_flight_prefix), f"{scaled['metadata']['name']}: {name} is no vidfleet key"
            assert name.removeprefix(in_flight_prefix) in _celery_queues()


def test_capture_scales_on_streams_wanted(chart: Rendered) -> None:
    if not _keda(chart):
        return
    (trigger,) = _triggers(chart, "capture", "redis")
    container = chart.workload("capture").container
    assert _arg(container, "--queues") == Queue.CAPTURE
    assert celery_config(_settings_defaults())["task_routes"][TaskName.CAPTURE_STREAM]["queue"] == Queue.CAPTURE
    assert trigger["metadata"]["listName"] == _keys(chart).stream_registry()
    # one worker per `concurrency` streams: the target is what a worker captures at once
    concurrency = str(chart.values["capture"]["concurrency"])
    assert trigger["metadata"]["listLength"] == _arg(container, "--concurrency") == concurrency


def test_live_detectors_scale_on_streams_and_lag(chart: Rendered) -> None:
    if not _keda(chart):
        return
    auto = chart.values["liveDetector"]["autoscaling"]
    (registry,) = _triggers(chart, "live-detector", "redis")
    assert registry["metadata"]["listName"] == _keys(chart).stream_registry()
    assert registry["metadata"]["listLength"] == str(auto["streamsPerDetector"])
    assert int(auto["streamsPerDetector"]) <= int(_arg(chart.workload("live-detector").container, "--max-streams"))
    (lag,) = _triggers(chart, "live-detector", "prometheus")
    assert lag["metadata"]["serverAddress"] == chart.values["keda"]["prometheus"]["serverAddress"]
    assert lag["metadata"]["threshold"] == str(auto["lagFramesPerDetector"])
    assert metric_names.STREAM_LAG_TOTAL.name in lag["metadata"]["query"]
    # the series carries the labels of the ServiceMonitor's target: this release's coordinator Service
    assert f'namespace="{NAMESPACE}"' in lag["metadata"]["query"]
    assert f'service="{chart.name("coordinator")}"' in lag["metadata"]["query"]


def test_prometheus_triggers_query_exported_metrics(chart: Rendered) -> None:
    if not _keda(chart):
        return
    triggers = [t for s in chart.of_kind("ScaledObject") for t in s["spec"]["triggers"]]
    queries = [t["metadata"]["query"] for t in triggers if t["type"] == "prometheus"]
    assert queries
    for query in queries:
        names = set(re.findall(r"\bvidfleet_[a-z0-9_]+\b", query))
        assert names and names <= set(metric_names.BY_NAME), query
        assert {metric_names.BY_NAME[n].exporter for n in names} == {"coordinator"}  # scraped by the ServiceMonitor


def test_triggers_read_the_redis_the_pods_use(chart: Rendered) -> None:
    if not _keda(chart):
        return
    auths = {a["metadata"]["name"]: a for a in chart.of_kind("TriggerAuthentication")}
    for scaled in chart.of_kind("ScaledObject"):
        target = next(w for w in chart.workloads() if w.name == scaled["spec"]["scaleTargetRef"]["name"])
        assert target.kind == "Deployment" and "replicas" not in target.obj["spec"], "the HPA owns the replica count"
        env = _env(target.container)
        broker = urlsplit(env["CELERY_BROKER_URL"])
        for trigger in (t for t in scaled["spec"]["triggers"] if t["type"] == "redis"):
            host, port = trigger["metadata"]["address"].rsplit(":", 1)
            assert host in (broker.hostname, f"{broker.hostname}.{NAMESPACE}.svc")
            assert int(port) == (broker.port or 6379)
            assert trigger["metadata"]["databaseIndex"] == (broker.path.strip("/") or "0")
            params = _auth_params(auths, trigger)
            if broker.password:
                password = next(i for i in target.container["env"] if i["name"] == "REDIS_PASSWORD")
                password_ref = password["valueFrom"]["secretKeyRef"]
                assert params["password"] == (password_ref["name"], password_ref["key"])
            assert ("tls" in params) == (broker.scheme == "rediss")
            ca_volume = next((v for v in target.pod["volumes"] if v["name"] == "redis-ca"), None)
            assert ("ca" in params) == (ca_volume is not None)
            if ca_volume:
                assert params["ca"][0] == ca_volume["secret"]["secretName"]
            if broker.username:
                assert "username" in params


def _auth_params(auths: dict[str, dict[str, Any]], trigger: dict[str, Any]) -> dict[str, tuple[str, str]]:
    ref = trigger.get("authenticationRef")
    if ref is None:
        return {}
    spec = auths[ref["name"]]["spec"]
    return {r["parameter"]: (r["name"], r["key"]) for r in spec["secretTargetRef"]}


def test_scaling_bounds_come_from_values(chart: Rendered) -> None:
    if not chart.values["keda"]["enabled"]:
        for component, key in (("capture", "capture"), ("detector", "detector"), ("live-detector", "liveDetector")):
            assert chart.workload(component).obj["spec"]["replicas"] == chart.values[key]["replicas"]
        return
    for component, key in (("capture", "capture"), ("detector", "detector"), ("live-detector", "liveDetector")):
        spec = _scaled_object(chart, component)["spec"]
        auto = chart.values[key]["autoscaling"]
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (auto["minReplicas"], auto["maxReplicas"])
        assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (auto["pollingInterval"], auto["cooldownPeriod"])


# Ports and probe paths

def test_coordinator_port_and_probes_match_the_api(chart: Rendered) -> None:
    container = chart.workload("coordinator").container
    (port,) = container["ports"]
    env = _env(container)
    assert port["containerPort"] == int(env["VIDFLEET_API_PORT"]) == _settings_defaults().api_port
    routes = _coordinator_get_routes()
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"  # never touches Redis
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"  # 503 while Redis is unreachable
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes
        assert container[probe]["httpGet"]["port"] == port["name"]
    service = chart.get("Service", chart.name("coordinator"))
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    for monitor in chart.of_kind("ServiceMonitor"):
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == service_port["name"] and endpoint["path"] in routes
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


@pytest.mark.parametrize("component", WORKER_COMPONENTS)
def test_worker_metrics_port_matches_settings(chart: Rendered, component: str) -> None:
    container = chart.workload(component).container
    (port,) = container["ports"]
    assert port["containerPort"] == int(_env(container)["VIDFLEET_METRICS_PORT"]) == _settings_defaults().metrics_port
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": port["name"]}
    monitors = [m for m in chart.of_kind("PodMonitor") if m["metadata"]["name"] == chart.name(component)]
    assert len(monitors) == (1 if chart.values["monitoring"]["enabled"] else 0)
    for monitor in monitors:
        assert monitor["spec"]["selector"]["matchLabels"].items() <= chart.workload(component).pod_labels.items()
        assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == [port["name"]]


def test_workers_consume_the_queues_their_tasks_are_routed_to(chart: Rendered) -> None:
    routes = celery_config(_settings_defaults())["task_routes"]
    assert _arg(chart.workload("detector").container, "--queues") == routes[TaskName.DETECT_VIDEO]["queue"]
    assert _arg(chart.workload("detector").container, "--queues") == routes[TaskName.STITCH_VIDEO]["queue"]  # split videos
    assert _arg(chart.workload("capture").container, "--queues") == routes[TaskName.CAPTURE_STREAM]["queue"]


def _workloads_using_redis(chart: Rendered) -> list[Workload]:
    def uses_redis(w: Workload) -> bool:
        return any(i["name"] == "CELERY_BROKER_URL" for c in w.containers() for i in c.get("env", []))

    return [w for w in chart.workloads() if uses_redis(w)]


def test_every_redis_client_uses_the_same_broker(chart: Rendered) -> None:
    containers = [c for w in _workloads_using_redis(chart) for c in w.containers()]
    brokers = {_env(c)["CELERY_BROKER_URL"].split("?")[0] for c in containers}
    assert len(brokers) == 1
    if chart.values["redis"]["enabled"]:
        (broker,) = brokers
        service = chart.get("Service", chart.name("redis"))
        assert urlsplit(broker).hostname == service["metadata"]["name"]
        assert urlsplit(broker).port == service["spec"]["ports"][0]["port"]

