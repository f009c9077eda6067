import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_job_config_doc_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_config_doc", ROOT / "tools" / "gen_config_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "job-config.md").read_text() == module.render(), "run: python tools/gen_config_doc.py"
