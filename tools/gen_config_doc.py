"""Write docs/job-config.md from JobConfig's fields (a test keeps the two in step)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vidfleet_common.job_config import JobConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "job-config.md"


def render() -> str:
    lines = [
        "# Job config",
        "",
        "Generated from `vidfleet_common.job_config.JobConfig` by `python tools/gen_config_doc.py`.",
        "A job config is a JSON object; unknown keys and values of the wrong type are refused with",
        "one line naming the key, the expected type and the value given.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in JobConfig.model_fields.items():
        annotation = str(field.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
        lines.append(f"| `{name}` | `{annotation}` | `{json.dumps(field.default)}` | {field.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC}\n")
