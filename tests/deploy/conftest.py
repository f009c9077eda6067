"""The chart rendered offline, once per values set: the defaults and charts/vidfleet/ci/*-values.yaml."""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "vidfleet"
# Upstream KEDA, Prometheus Operator and skaffold schemas, vendored so that a clean clone validates offline.
SCHEMAS = Path(__file__).resolve().parent / "schemas"
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
RELEASE = "vidfleet"
NAMESPACE = "vidfleet"
KUBE_VERSIONS = ("1.30.0", "1.31.0")
VALUE_SETS = ("default", *sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml")))


def _load_render_script() -> Any:
    spec = importlib.util.spec_from_file_location("render_manifests", REPO_ROOT / "scripts" / "render_manifests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_manifests = _load_render_script()


def values_file(value_set: str) -> Path | None:
    return None if value_set == "default" else CHART / "ci" / f"{value_set}-values.yaml"


def load_values(value_set: str) -> dict[str, Any]:
    path = values_file(value_set)
    return render_manifests.load_values([path]) if path else {}


@dataclass
class Workload:
    """A Deployment or StatefulSet, with its pod spec at hand."""

    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.obj["kind"]

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    @property
    def pod(self) -> dict[str, Any]:
        return self.obj["spec"]["template"]["spec"]

    @property
    def pod_labels(self) -> dict[str, str]:
        return self.obj["spec"]["template"]["metadata"]["labels"]

    @property
    def component(self) -> str:
        return self.pod_labels["app.kubernetes.io/component"]

    def containers(self) -> list[dict[str, Any]]:
        return [*self.pod.get("initContainers", []), *self.pod["containers"]]

    @property
    def container(self) -> dict[str, Any]:
        (only,) = self.pod["containers"]
        return only


@dataclass
class Rendered:
    value_set: str
    values: dict[str, Any]  # the chart's defaults merged with the set's file, as Helm sees them
    objects: list[dict[str, Any]]
    notes: str
    _by_kind: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for obj in self.objects:
            self._by_kind.setdefault(obj["kind"], []).append(obj)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return self._by_kind.get(kind, [])

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.value_set}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    def name(self, component: str) -> str:
        return f"{RELEASE}-{component}"

    def workloads(self) -> list[Workload]:
        return [Workload(o) for o in self.objects if o["kind"] in ("Deployment", "StatefulSet")]

    def workload(self, component: str) -> Workload:
        found = [w for w in self.workloads() if w.component == component]
        assert len(found) == 1, f"{self.value_set}: expected one workload of component {component}, found {len(found)}"
        return found[0]

    def has_component(self, component: str) -> bool:
        return any(w.component == component for w in self.workloads())

    def text(self) -> str:
        return json.dumps(self.objects)


@functools.cache
def render_set(value_set: str) -> Rendered:
    import helm_python as helm

    values = load_values(value_set)
    texts = render_manifests.render_texts(CHART, values, name=RELEASE, namespace=NAMESPACE)
    objects = render_manifests.split_objects(t for p, t in sorted(texts.items()) if not p.endswith("NOTES.txt"))
    notes = next(t for p, t in texts.items() if p.endswith("NOTES.txt"))
    with helm.Chart.load(str(CHART)) as chart:
        merged = chart.merge_values(values)
    return Rendered(value_set, merged, objects, notes)


@pytest.fixture(scope="module", params=VALUE_SETS)
def chart(request: pytest.FixtureRequest) -> Iterator[Rendered]:
    """The chart rendered with one values set (cached: each set is rendered once per session)."""
    yield render_set(request.param)
