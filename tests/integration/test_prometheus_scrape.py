"""A real Prometheus on loopback scrapes a real local fleet while a job and a live stream run: every Grafana
panel's query parses and returns data, every rule evaluates, an alert goes pending on a real condition, and
every service's /metrics passes `promtool check metrics`."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import BUNDLED_MODEL
from tests.fleet import Fleet, MetricsProcess
from tests.servers import free_port, wait_for
from tests.webhooks import WebhookReceiver
from vidfleet_common import metric_names as m

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "charts" / "vidfleet" / "rules" / "vidfleet.rules.yaml"
DASHBOARDS = REPO_ROOT / "charts" / "vidfleet" / "dashboards"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# What Grafana puts in place of its variables (VERIFYING-DEPLOYMENT.md section 7); dashboard variables match all.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
JOB_CONFIG = {
    "model": BUNDLED_MODEL, "min_hits": 2, "max_age": 3,
    "lines": [{"name": "gate", "points": [[0.5, 0], [0.5, 1]]}], "zones": [{"name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
}
# The live stream counts a gate and a belt its objects cross every loop, and a keep-out zone (capacity 0) they enter.
STREAM_COUNTING = {
    **JOB_CONFIG,
    "lines": [{"name": "gate", "points": [[0.5, 0], [0.5, 1]]}, {"name": "belt", "points": [[0, 0.5], [1, 0.5]]}],
    "zones": [{"name": "keepout", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "capacity": 0}],
}


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, folder: Path, targets: dict[str, str]) -> Prometheus:
        """Scrape every second the `job name -> host:port` targets (all on /metrics), with the chart's rules."""
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()],
        }
        config_file = folder / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        checked = subprocess.run([PROMTOOL, "check", "config", str(config_file)], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        port = free_port()
        log = folder / "prometheus.log"
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config_file}", f"--web.listen-address=127.0.0.1:{port}",
             f"--storage.tsdb.path={folder / 'data'}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        prometheus = cls(f"http://127.0.0.1:{port}", process, log)
        wait_for(prometheus.ready, timeout=30, what=f"prometheus on port {port}")
        return prometheus

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def api(self, path: str, **params: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise QueryError(body.get("error", response.text))
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


class QueryError(Exception):
    pass


@dataclass(frozen=True)
class Panel:
    dashboard: str
    title: str
    expr: str

    @property
    def query(self) -> str:
        text = self.expr
        for name, value in sorted(self.substitutions.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(name, value)
        return text

    @property
    def substitutions(self) -> dict[str, str]:
        dash = json.loads((DASHBOARDS / self.dashboard).read_text())
        return {**GRAFANA_VARIABLES, **{f"${v['name']}": ".*" for v in dash["templating"]["list"] if v["type"] == "query"}}


def dashboard_panels() -> list[Panel]:
    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from walk(panel.get("panels", []))

    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in walk(json.loads(path.read_text())["panels"]):
            found += [Panel(path.name, f"{panel['title']} ({t['refId']})", t["expr"]) for t in panel.get("targets", [])]
    return found


def label_variables() -> list[tuple[str, str, str]]:
    """(dashboard, metric, label) of every `label_values(metric, label)` variable."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for var in json.loads(path.read_text())["templating"]["list"]:
            if var["type"] == "query":
                metric, label = var["definition"].removeprefix("label_values(").removesuffix(")").split(", ")
                found.append((path.name, metric, label))
    return found


@dataclass
class Monitored:
    fleet: Fleet
    prometheus: Prometheus
    services: dict[str, MetricsProcess | None]  # None: the coordinator, whose /metrics is on its API port
    webhook: WebhookReceiver


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    from vidfleet_detector.synthetic import generate_video

    folder = tmp_path_factory.mktemp("monitored")
    inputs = folder / "input"
    generate_video(inputs / "clip0.mp4", seed=70, frames=30, objects=3)
    generate_video(inputs / "clip1.mp4", seed=71, frames=24, objects=3)
    generate_video(inputs / "street.mp4", seed=74, frames=60, objects=4)  # 3 clear crossings of the gate and belt a loop
    (inputs / "broken.mp4").write_text("not a video\n")

    fleet = Fleet.start(folder, inputs, workers=0)
    prometheus = None
    webhook = WebhookReceiver().start()
    try:
        worker = fleet.add_worker("w1")
        capture = fleet.add_capture("cap1")
        live = fleet.add_live_detector("live1", model=BUNDLED_MODEL, batch=4)
        coordinator_target = f"127.0.0.1:{fleet.coordinator.port}"
        services: dict[str, MetricsProcess | None] = {"coordinator": None, "detector": worker, "capture": capture, "live-detector": live}
        targets = {name: (f"127.0.0.1:{p.metrics_port}" if p else coordinator_target) for name, p in services.items()}
        # Started before any work: every counter is seen at its starting value, so rate() and increase() see it move.
        prometheus = Prometheus.start(folder / "prometheus", targets)
        worker.wait_ready(fleet.coordinator)
        wait_for(lambda: all(t["health"] == "up" for t in prometheus.api("targets")["activeTargets"]) and len(targets) == 4,
                 timeout=90, what=f"every target up\n{fleet.logs()}", interval=0.5)
        yield Monitored(fleet, prometheus, services, webhook)
    finally:
        if prometheus is not None:
            prometheus.stop()
        fleet.close()
        webhook.stop()


@pytest.fixture(scope="module")
def worked(monitored: Monitored) -> Monitored:
    """A batch job (two videos and an unreadable one: partial) and two streams (one tracked, one failing) have run."""
    fleet = monitored.fleet
    for spec in ({"name": "street", "source": "street.mp4", "fps": 15, "loop": True, "config": STREAM_COUNTING, "webhook": monitored.webhook.url},
                 {"name": "broken", "source": "broken.mp4"}):
        response = fleet.coordinator.api("POST", "/streams", json=spec)
        assert response.status_code == 201, response.text
    job = fleet.submit(["clip0.mp4", "clip1.mp4", "broken.mp4"], JOB_CONFIG)
    finished = fleet.coordinator.wait_finished(job["job_id"])
    assert finished["state"] == "partial", finished
    wait_for(lambda: fleet.coordinator.api("GET", "/streams/street").json()["detector_fps"], timeout=90,
             what=f"the stream tracked\n{fleet.logs()}", interval=0.3)
    # Prometheus has scraped the finished job and the tracked frames.
    wait_for(lambda: monitored.prometheus.query(f"sum({m.JOBS_FINISHED.name}) > 0 and on () sum({m.LIVE_FRAMES.name}) > 0"),
             timeout=30, what="the job and the stream in prometheus", interval=0.5)
    return monitored


# Panels the run must move above zero (a job with an unreadable video, a stream tracked on CPU), not only fill.
MOVED_BY_THE_RUN = {
    ("fleet-overview.json", "Frames through the model (A)"),
    ("jobs.json", "Videos finished per minute (A)"),
    ("jobs.json", "Errors per minute by kind (A)"),
    ("jobs.json", "Failed or partial (1 h) (A)"),
    ("jobs.json", "Frames decoded per second (A)"),
    ("live-streams.json", "Capture fps (A)"),
    ("live-streams.json", "Tracked fps (A)"),
    ("live-streams.json", "Latency p50 / p99 (B)"),
    ("gpu-workers.json", "Device memory (A)"),
    ("gpu-workers.json", "Model busy (A)"),
    ("gpu-workers.json", "Model loads (A)"),
    ("counting.json", "Crossings (range) (A)"),
    ("counting.json", "Zone entries (range) (A)"),
    ("counting.json", "Objects in zones (A)"),
    ("counting.json", "Zones over capacity (A)"),
    ("counting.json", "Batch zone entries (range) (A)"),
    ("counting.json", "Webhook events (range) (A)"),
}


def evaluate(prometheus: Prometheus, panels: list[Panel]) -> tuple[dict[Panel, str], dict[Panel, list[float]]]:
    """Each panel's query as Grafana would send it: the ones that fail (error), and the values the rest return."""
    failed, values = {}, {}
    for panel in panels:
        try:
            result = prometheus.query(panel.query)
        except QueryError as exc:
            failed[panel] = str(exc)
            continue
        values[panel] = [v for r in result if not math.isnan(v := float(r["value"][1]))]
    return failed, values


def test_every_dashboard_panel_query_parses_and_returns_data(worked: Monitored) -> None:
    panels = dashboard_panels()
    assert len(panels) >= 40 and {p.dashboard for p in panels} == {p.name for p in DASHBOARDS.glob("*.json")}
    assert MOVED_BY_THE_RUN <= {(p.dashboard, p.title) for p in panels}
    # rate() windows fill as scrapes arrive: ask again until every panel has data, or the deadline.
    state: dict[str, Any] = {}

    def empty_or_still() -> list[Panel]:
        return [p for p, v in state["values"].items() if not v or ((p.dashboard, p.title) in MOVED_BY_THE_RUN and max(v) <= 0)]

    def all_have_data() -> bool:
        state["failed"], state["values"] = evaluate(worked.prometheus, panels)
        return not state["failed"] and not empty_or_still()

    try:
        # Long enough to ride out a few scrapes that time out (1 s) while two cores are busy.
        wait_for(all_have_data, timeout=90, what="every panel with data", interval=1.0)
    except TimeoutError:
        pass
    assert state["failed"] == {}, "\n".join(f"{p.dashboard}: {p.title}: {e}\n  {p.query}" for p, e in state["failed"].items())
    targets = "\n".join(f"  {t['labels']['job']}: {t['health']} {t.get('lastError', '')}" for t in worked.prometheus.api("targets")["activeTargets"])
    assert empty_or_still() == [], "no data (only NaN, or not above 0 where the run should show):\n" + "\n".join(
        f"{p.dashboard}: {p.title}: {state['values'][p]}\n  {p.query}" for p in empty_or_still()
    ) + f"\ntargets:\n{targets}"

    for dashboard, metric, label in label_variables():
        values = worked.prometheus.api(f"label/{label}/values", **{"match[]": metric})
        assert values, f"{dashboard}: variable over {label} of {metric} has no values"


def test_the_gpu_panels_show_the_batch_worker_and_the_live_detector(worked: Monitored) -> None:
    """Both kinds of detector worker report their model, device and memory (CPU here: resident memory)."""
    info = worked.prometheus.query(m.MODEL_INFO.name)
    assert {(r["metric"]["job"], r["metric"]["model"], r["metric"]["device"]) for r in info} == {
        ("detector", BUNDLED_MODEL, "cpu"), ("live-detector", BUNDLED_MODEL, "cpu")
    }
    memory = {r["metric"]["job"]: float(r["value"][1]) for r in worked.prometheus.query(f'{m.DEVICE_MEMORY.name}{{device="cpu"}}')}
    assert memory.keys() == {"detector", "live-detector"} and all(v > 50 * 2**20 for v in memory.values()), memory


def test_every_rule_evaluates_and_a_real_condition_raises_its_alert(worked: Monitored) -> None:
    prometheus = worked.prometheus
    expected = {r.get("alert") or r["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}

    def evaluated() -> list[dict[str, Any]]:
        found = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        return found if all(not r["lastEvaluation"].startswith("0001-") for r in found) else []

    rules = wait_for(evaluated, timeout=20, what="every rule evaluated", interval=0.5)
    assert {r["name"] for r in rules} == expected
    assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []
    # The recording rules the dashboards read hold data from the run: the partial job (the only job), the tracked stream.
    wait_for(lambda: prometheus.query("vidfleet:job_failure_ratio:1h == 1"), timeout=20, what="the failure ratio of the partial job")
    wait_for(lambda: prometheus.query('vidfleet:stream_lag_seconds:max{stream="street"}'), timeout=20, what="the stream's lag in seconds")
    wait_for(lambda: prometheus.query('vidfleet:zone_objects:sum{stream="street", zone="keepout"} > 0'), timeout=30, what="objects in the zone")

    # The broken stream is wanted and never captures: its alert goes pending (it fires only after 5 minutes).
    def pending() -> list[dict[str, Any]]:
        return [a for a in prometheus.api("alerts")["alerts"] if a["labels"]["alertname"] == "VidfleetStreamsNotCapturing"]

    (alert,) = wait_for(pending, timeout=30, what="VidfleetStreamsNotCapturing pending", interval=0.5)
    assert alert["state"] == "pending" and float(alert["value"]) == 1.0
    assert alert["annotations"]["runbook_url"] == "docs/alerts.md#vidfleetstreamsnotcapturing"

    # Objects in the keep-out zone (capacity 0): its alert goes pending (or fires, a minute on), for that zone only.
    def over_capacity() -> list[dict[str, Any]]:
        return [a for a in prometheus.api("alerts")["alerts"] if a["labels"]["alertname"] == "VidfleetZoneOverCapacity"]

    (zone_alert,) = wait_for(over_capacity, timeout=30, what="VidfleetZoneOverCapacity pending", interval=0.5)
    assert (zone_alert["labels"]["stream"], zone_alert["labels"]["zone"]) == ("street", "keepout") and float(zone_alert["value"]) >= 1
    provoked = {"VidfleetZoneOverCapacity"}
    firing = [a["labels"]["alertname"] for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing" and a["labels"]["alertname"] not in provoked]
    assert firing == [], f"alerts firing on a healthy fleet: {firing}"


@pytest.mark.parametrize("service", ["coordinator", "detector", "capture", "live-detector"])
def test_promtool_accepts_each_service_metrics(worked: Monitored, service: str) -> None:
    process = worked.services[service]
    text = process.metrics() if process else worked.fleet.coordinator.api("GET", "/metrics", token=None).text
    assert "vidfleet_" in text
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
