"""Write docs/job-config.md from JobConfig's fields (a test keeps the two in step)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from pydantic import BaseModel

from vidfleet_common.counting import LineSpec, ZoneSpec
from vidfleet_common.job_config import JobConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "job-config.md"


def _table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        annotation = str(field.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
        annotation = re.sub(r"\b(?:[a-z_]+\.)+([A-Z]\w*)", r"\1", annotation)  # vidfleet_common.counting.LineSpec -> LineSpec
        annotation = re.sub(r"Literal\[[^\]]*\]", "str", annotation)  # the values are listed in the meaning
        annotation = re.sub(r"^Optional\[(.*)\]$", r"\1 | None", annotation)
        default = field.get_default(call_default_factory=True)
        shown = "required" if field.is_required() else f"`{json.dumps(default)}`"
        lines.append(f"| `{name}` | `{annotation}` | {shown} | {field.description} |")
    return lines


def render() -> str:
    lines = [
        "# Job config",
        "",
        "Generated from `vidfleet_common.job_config.JobConfig` by `python tools/gen_config_doc.py`.",
        "A job config is a JSON object; unknown keys and values of the wrong type are refused with",
        "one line naming the key, the expected type and the value given.",
        "",
        *_table(JobConfig),
        "",
        "## `lines` items (LineSpec)",
        "",
        "Semantics, anchors and the dead band: [counting.md](counting.md).",
        "",
        *_table(LineSpec),
        "",
        "## `zones` items (ZoneSpec)",
        "",
        *_table(ZoneSpec),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC}\n")
