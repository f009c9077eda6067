"""Render the vidfleet chart offline and split the manifests into one file per object.

The KEDA and Prometheus Operator API versions are advertised to the render (as a cluster that has their CRDs
would), so templates guarded by `.Capabilities.APIVersions.Has` render too. Importable: `render_objects()`
returns the rendered objects; the CLI writes OUT/all.yaml and OUT/<Kind>/<n>-<name>.yaml.

    python scripts/render_manifests.py charts/vidfleet build/manifests --values charts/vidfleet/ci/cpu-only.yaml
"""

from __future__ import annotations

import argparse
import json
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import helm_python as helm
import yaml
from helm_python import _native  # private call (API versions, kube version): helm-python-sdk is pinned at 0.2.2

API_VERSIONS = [
    "keda.sh/v1alpha1",
    "keda.sh/v1alpha1/ScaledObject",
    "keda.sh/v1alpha1/ScaledJob",
    "keda.sh/v1alpha1/TriggerAuthentication",
    "monitoring.coreos.com/v1",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PodMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
]
DEFAULT_NAME = "vidfleet"
DEFAULT_NAMESPACE = "vidfleet"
DEFAULT_KUBE_VERSION = "v1.31.0"


def merge_values(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's rule for several values files: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_values(files: Iterable[str | pathlib.Path]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for file in files:
        values = merge_values(values, helm.values_from_yaml(pathlib.Path(file).read_text()) or {})
    return values


def render_texts(
    chart: str | pathlib.Path,
    values: Mapping[str, Any] | None = None,
    *,
    name: str = DEFAULT_NAME,
    namespace: str = DEFAULT_NAMESPACE,
    kube_version: str = DEFAULT_KUBE_VERSION,
) -> dict[str, str]:
    """Template path -> rendered text, NOTES.txt included. Values are checked against values.schema.json first."""
    values = dict(values or {})
    opts = {"name": name, "namespace": namespace, "kube_version": kube_version, "api_versions": API_VERSIONS}
    with helm.Chart.load(str(chart)) as loaded:  # loaded afresh for every render
        loaded.validate_schema(values)
        rendered: dict[str, str] = json.loads(
            _native.call_string("helm_render", loaded._raw(), json.dumps(values), json.dumps(opts))
        )
    return rendered


def split_objects(texts: Iterable[str]) -> list[dict[str, Any]]:
    objects = []
    for text in texts:
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def render_objects(
    chart: str | pathlib.Path,
    values: Mapping[str, Any] | None = None,
    *,
    name: str = DEFAULT_NAME,
    namespace: str = DEFAULT_NAMESPACE,
    kube_version: str = DEFAULT_KUBE_VERSION,
) -> list[dict[str, Any]]:
    """Every object the chart renders, in template order (NOTES.txt and empty templates left out)."""
    texts = render_texts(chart, values, name=name, namespace=namespace, kube_version=kube_version)
    return split_objects(text for path, text in sorted(texts.items()) if not path.endswith("NOTES.txt"))


def write_objects(objects: Sequence[dict[str, Any]], out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "all.yaml", "w") as all_file:
        for n, obj in enumerate(objects, start=1):
            body = yaml.safe_dump(obj, sort_keys=False)
            kind_dir = out / obj["kind"]
            kind_dir.mkdir(exist_ok=True)
            (kind_dir / f"{n:03d}-{obj['metadata']['name']}.yaml").write_text(body)
            all_file.write("---\n" + body)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("chart", help="chart folder, e.g. charts/vidfleet")
    ap.add_argument("out", help="output folder (all.yaml and one folder per kind)")
    ap.add_argument("--values", action="append", default=[], help="values file; repeat to merge several, later wins")
    ap.add_argument("--kube-version", default=DEFAULT_KUBE_VERSION)
    ap.add_argument("--name", default=DEFAULT_NAME, help="release name")
    ap.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    ap.add_argument("--extra", action="append", default=[], help="more YAML files to include (e.g. kustomize output)")
    a = ap.parse_args(argv)

    objects = render_objects(
        a.chart, load_values(a.values), name=a.name, namespace=a.namespace, kube_version=a.kube_version
    )
    objects += split_objects(pathlib.Path(f).read_text() for f in a.extra)
    out = pathlib.Path(a.out)
    write_objects(objects, out)
    print(f"{len(objects)} objects in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
