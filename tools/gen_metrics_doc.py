"""Write docs/metrics.md from vidfleet_common.metric_names (a test keeps the two in step)."""

from __future__ import annotations

import sys
from pathlib import Path

from vidfleet_common.metric_names import ALL

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"

EXPORTERS = {
    "detector": "Detector workers: each worker serves its own `/metrics` (port `VIDFLEET_METRICS_PORT`, 9101), "
    "summed over its Celery pool processes.",
    "coordinator": "The coordinator: `/metrics` on the API port (8000), the fleet as a whole, read from Redis and "
    "Celery at scrape time (gauges) or counted by the coordinator (counters).",
    "capture": "Capture workers.",
    "every": "Every service: the coordinator, detector workers (batch and live) and capture workers, each on its own `/metrics`.",
}


def render() -> str:
    lines = [
        "# Metrics",
        "",
        "Generated from `vidfleet_common.metric_names` by `python tools/gen_metrics_doc.py`; dashboards,",
        "alert rules and KEDA triggers are checked against the same module.",
    ]
    for exporter, text in EXPORTERS.items():
        specs = [s for s in ALL if s.exporter == exporter]
        if not specs:
            continue
        lines += ["", f"## {exporter}", "", text, "", "| metric | type | labels | meaning |", "|---|---|---|---|"]
        for s in specs:
            labels = ", ".join(f"`{label}`" for label in s.labels) or "-"
            lines.append(f"| `{s.name}` | {s.type} | {labels} | {s.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC}\n")
