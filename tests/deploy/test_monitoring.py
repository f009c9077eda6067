"""The alert rules and Grafana dashboards agree with the metrics the code exports (vidfleet_common.metric_names),
pass promtool, and point at a runbook section that exists. Fast: files and promtool only, no fleet."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from vidfleet_common.metric_names import BY_NAME, MetricSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "charts" / "vidfleet" / "rules" / "vidfleet.rules.yaml"
RULES_TEST = REPO_ROOT / "monitoring" / "rules_test.yml"
DASHBOARDS = REPO_ROOT / "charts" / "vidfleet" / "dashboards"
ALERTS_DOC = REPO_ROOT / "docs" / "alerts.md"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# Labels Prometheus (or the Prometheus Operator) puts on every scraped series.
TARGET_LABELS = {"job", "instance", "pod", "namespace", "container", "service", "endpoint"}
SEVERITIES = {"critical", "warning", "info"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
RANGE_FUNCTIONS = ("rate", "irate", "increase")
GAUGE_RANGE_FUNCTIONS = ("deriv", "delta", "idelta", "predict_linear")
AGGREGATIONS = ("sum", "max", "min", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "group", "count_values")


@dataclass(frozen=True)
class Expr:
    where: str
    text: str


def rule_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES.read_text())["groups"]


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recorded() -> dict[str, set[str]]:
    """Recording rules, by name, with the labels their series carry (the `by` of their aggregations, less `le`)."""
    return {rule["record"]: set().union(*by_clauses(rule["expr"])) - {"le"} for rule in rules() if "record" in rule}


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_exprs() -> list[Expr]:
    found = []
    for name, dash in dashboards().items():
        for panel in panels(dash["panels"]):
            for t in panel.get("targets", []):
                found.append(Expr(f"{name}: {panel['title']} ({t['refId']})", t["expr"]))
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                found.append(Expr(f"{name}: variable {var['name']}", var["definition"]))
    return found


def rule_exprs() -> list[Expr]:
    return [Expr(f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]) for rule in rules()]


ALL_EXPRS = dashboard_exprs() + rule_exprs()


# ---- a little PromQL reading: enough to find metric names, label uses and range functions -------------------

def metric_tokens(expr: str) -> set[str]:
    return set(re.findall(r"\bvidfleet_[a-z0-9_]+\b", expr)) | set(re.findall(r"\bvidfleet:[a-z0-9_:]+\b", expr))


def spec_of(name: str) -> tuple[MetricSpec | None, str]:
    """The spec a series name belongs to, and the suffix that was taken off (histograms only)."""
    if name in BY_NAME:
        return BY_NAME[name], ""
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and base in BY_NAME and BY_NAME[base].type == "histogram":
            return BY_NAME[base], suffix
    return None, ""


def labels_of(name: str) -> set[str]:
    if name in recorded():
        return recorded()[name] | TARGET_LABELS
    spec, suffix = spec_of(name)
    assert spec is not None, name
    return set(spec.labels) | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())


def balanced(text: str, start: int) -> str:
    """The text inside the parenthesis that opens at `start`."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i]
    raise AssertionError(f"unbalanced parentheses in {text!r}")


def by_clauses(expr: str) -> list[set[str]]:
    return [{label.strip() for label in m.group(1).split(",") if label.strip()} for m in re.finditer(r"\bby\s*\(([^)]*)\)", expr)]


def aggregations(expr: str) -> Iterator[tuple[set[str], str]]:
    """(labels of `by`, the aggregated argument) for every `agg by (...) (...)`."""
    pattern = rf"\b(?:{'|'.join(AGGREGATIONS)})\s+by\s*\(([^)]*)\)\s*\("
    for m in re.finditer(pattern, expr):
        labels = {label.strip() for label in m.group(1).split(",") if label.strip()}
        yield labels, balanced(expr, m.end() - 1)


def selectors(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(metric, labels its matchers name) for every `metric{...}`."""
    for m in re.finditer(r"\b(vidfleet[_:][a-z0-9_:]+)\{([^}]*)\}", expr):
        yield m.group(1), set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", m.group(2)))


def function_arguments(expr: str, functions: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for m in re.finditer(rf"\b({'|'.join(functions)})\s*\(", expr):
        yield m.group(1), balanced(expr, m.end() - 1)


# ---- every metric exists, with a type that fits its use, and labels it has -------------------------------------

@pytest.mark.parametrize("expr", ALL_EXPRS, ids=lambda e: e.where)
def test_every_metric_is_exported_or_recorded(expr: Expr) -> None:
    names = metric_tokens(expr.text)
    # The one series of Prometheus's own a dashboard may read: the vidfleet alerts firing.
    assert names or "ALERTS{" in expr.text, f"{expr.where}: no vidfleet metric in {expr.text!r}"
    for name in names:
        if name.startswith("vidfleet:"):
            assert name in recorded(), f"{expr.where}: {name} is no recording rule of {RULES.name}"
            continue
        spec, _ = spec_of(name)
        assert spec is not None, f"{expr.where}: {name} is not in vidfleet_common.metric_names"
        if spec.type == "histogram":
            assert name != spec.name, f"{expr.where}: histogram {name} has only _bucket/_sum/_count series"


@pytest.mark.parametrize("expr", ALL_EXPRS, ids=lambda e: e.where)
def test_range_functions_fit_the_metric_type(expr: Expr) -> None:
    for function, argument in function_arguments(expr.text, RANGE_FUNCTIONS):
        for name in metric_tokens(argument):
            spec, suffix = spec_of(name)
            assert spec is not None and (spec.type == "counter" or suffix), f"{expr.where}: {function}() over {name}, not a counter"
    for function, argument in function_arguments(expr.text, GAUGE_RANGE_FUNCTIONS):
        for name in metric_tokens(argument):
            spec, _ = spec_of(name)
            assert name in recorded() or (spec and spec.type == "gauge"), f"{expr.where}: {function}() over {name}, not a gauge"
    for _, argument in function_arguments(expr.text, ("histogram_quantile",)):
        buckets = [n for n in metric_tokens(argument) if spec_of(n)[1] == "_bucket"]
        assert buckets, f"{expr.where}: histogram_quantile over no _bucket series"
        assert all("le" in labels for labels, _ in aggregations(argument)), f"{expr.where}: histogram_quantile must keep `le`"


@pytest.mark.parametrize("expr", ALL_EXPRS, ids=lambda e: e.where)
def test_labels_used_exist_on_the_metrics(expr: Expr) -> None:
    for metric, labels in selectors(expr.text):
        assert labels <= labels_of(metric), f"{expr.where}: {metric} has no label {labels - labels_of(metric)}"
    for labels, argument in aggregations(expr.text):
        available = set().union(*(labels_of(n) for n in metric_tokens(argument)))
        assert labels <= available, f"{expr.where}: by {labels - available} is a label of none of {metric_tokens(argument)}"
    for m in re.finditer(r"\b(?:on|ignoring)\s*\(([^)]*)\)", expr.text):
        labels = {label.strip() for label in m.group(1).split(",") if label.strip()}
        available = set().union(*(labels_of(n) for n in metric_tokens(expr.text)))
        assert labels <= available, f"{expr.where}: on/ignoring {labels - available}"
    assert not re.search(r"\)\s*by\s*\(", expr.text), f"{expr.where}: write `sum by (...) (x)`, the form these checks read"


def test_the_checks_catch_a_misspelt_metric_a_rate_of_a_gauge_and_a_missing_label() -> None:
    with pytest.raises(AssertionError, match="not in vidfleet_common.metric_names"):
        test_every_metric_is_exported_or_recorded(Expr("bad", "sum(vidfleet_frame_processed_total)"))
    with pytest.raises(AssertionError, match="not a counter"):
        test_range_functions_fit_the_metric_type(Expr("bad", "rate(vidfleet_queue_depth[5m])"))
    with pytest.raises(AssertionError, match="no label"):
        test_labels_used_exist_on_the_metrics(Expr("bad", 'vidfleet_redis_up{queue="detect"}'))
    with pytest.raises(AssertionError, match="label of none"):
        test_labels_used_exist_on_the_metrics(Expr("bad", "sum by (stream) (vidfleet_jobs)"))
    with pytest.raises(AssertionError, match="keep `le`"):
        test_range_functions_fit_the_metric_type(Expr("bad", "histogram_quantile(0.9, sum by (stream) (rate(vidfleet_live_latency_seconds_bucket[5m])))"))


# ---- the rules ------------------------------------------------------------------------------------------------

def runbook_anchors() -> set[str]:
    """GitHub's anchors of the headings of docs/alerts.md."""
    anchors = set()
    for line in ALERTS_DOC.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_every_alert_has_severity_summary_description_and_a_runbook(alert: dict[str, Any]) -> None:
    assert alert["alert"].startswith("Vidfleet")
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    text = annotations["summary"] + annotations["description"]
    assert "{{ $value" in text or "{{ $labels." in text or "absent(" in alert["expr"], "say which one or how bad"
    url = annotations["runbook_url"]
    assert url.startswith("docs/alerts.md#") or "/docs/alerts.md#" in url, url
    assert url.split("#", 1)[1] == alert["alert"].lower() and url.split("#", 1)[1] in runbook_anchors(), f"{url}: no such section"


def test_recording_rules_follow_the_naming_convention_and_are_not_exported_names() -> None:
    for name in recorded():
        assert re.fullmatch(r"vidfleet:[a-z0-9_]+:[a-z0-9_]+", name), name
        assert name.replace(":", "_") not in BY_NAME


def test_rule_groups_use_only_what_promtool_2_42_reads() -> None:
    for group in rule_groups():
        assert set(group) <= {"name", "interval", "limit", "rules"}, group["name"]


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_unit_tests_pass_and_cover_every_alert_firing() -> None:
    done = subprocess.run([PROMTOOL, "test", "rules", str(RULES_TEST)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    tests = yaml.safe_load(RULES_TEST.read_text())
    assert [str((RULES_TEST.parent / f).resolve()) for f in tests["rule_files"]] == [str(RULES.resolve())]
    # Recording rules first, then every alert group: without an order promtool's results depend on chance.
    assert tests["group_eval_order"] == [group["name"] for group in rule_groups()]
    assert rule_groups()[0]["rules"] and all("record" in rule for rule in rule_groups()[0]["rules"])
    fired = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    quiet = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", []) if not case.get("exp_alerts")}
    names = {a["alert"] for a in alerts()}
    assert names <= fired, f"alerts never shown firing: {names - fired}"
    assert names <= quiet, f"alerts never shown quiet: {names - quiet}"


def test_promtool_unit_tests_fail_when_an_alert_changes(tmp_path: Path) -> None:
    """The unit tests are not vacuous: the same tests against a rule file with one threshold moved fail."""
    changed = tmp_path / "rules" / RULES.name
    changed.parent.mkdir()
    changed.write_text(RULES.read_text().replace("vidfleet:live_latency_seconds:p99_rate5m > 1", "vidfleet:live_latency_seconds:p99_rate5m > 2"))
    test_file = tmp_path / "rules_test.yml"
    tests = yaml.safe_load(RULES_TEST.read_text())
    tests["rule_files"] = [str(changed)]
    test_file.write_text(yaml.safe_dump(tests))
    done = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "VidfleetLiveLatencyHigh" in done.stdout + done.stderr


# ---- the dashboards ---------------------------------------------------------------------------------------------

def test_four_dashboards_with_unique_uids_and_vidfleet_titles() -> None:
    found = dashboards()
    assert len(found) >= 4
    uids = [d["uid"] for d in found.values()]
    assert len(uids) == len(set(uids)) and all(re.fullmatch(r"[a-z0-9-]{1,40}", u) for u in uids)
    titles = [d["title"] for d in found.values()]
    assert len(titles) == len(set(titles)) and all(t.startswith("vidfleet") for t in titles)
    for wanted in ("overview", "jobs", "live", "gpu"):
        assert any(wanted in t.lower() for t in titles), f"no {wanted} dashboard"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_structure(name: str) -> None:
    dash = dashboards()[name]
    assert 36 <= dash["schemaVersion"] <= 41 and dash["id"] is None
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(dash["panels"])]
    assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
    for panel in panels(dash["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and panel.get("description"), panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == panel["datasource"]
            windows = re.findall(r"\[([^\]]+)\]", t["expr"])
            assert all(w in ("$__rate_interval", "$__range") for w in windows), f"{panel['title']}: fixed window in {t['expr']}"
            for variable in re.findall(r"\$(\w+)", t["expr"]):
                assert variable.startswith("__") or variable in variables, f"{panel['title']}: ${variable} is not defined"


def test_dashboards_show_the_worker_device_memory_and_models() -> None:
    exprs = " ".join(e.text for e in dashboard_exprs())
    for spec_name in ("vidfleet_device_memory_bytes", "vidfleet_model_info"):
        assert spec_name in BY_NAME and spec_name in exprs
