import importlib.util
import re
from pathlib import Path

from vidfleet_common import metric_names

ROOT = Path(__file__).resolve().parents[3]


def test_metrics_doc_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_metrics_doc", ROOT / "tools" / "gen_metrics_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "metrics.md").read_text() == module.render(), "run: python tools/gen_metrics_doc.py"


def test_metric_names_are_unique_and_follow_prometheus_conventions() -> None:
    names = [m.name for m in metric_names.ALL]
    assert len(names) == len(set(names))
    for spec in metric_names.ALL:
        assert re.fullmatch(r"vidfleet_[a-z0-9_]+", spec.name), spec.name
        assert spec.name.endswith("_total") == (spec.type == "counter"), f"{spec.name}: only counters end in _total"
        assert spec.help.endswith("."), spec.name
    assert metric_names.BY_NAME["vidfleet_videos_total"].client_name == "vidfleet_videos"
    assert metric_names.BY_NAME["vidfleet_batch_size"].client_name == "vidfleet_batch_size"
