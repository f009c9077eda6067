"""The services stay independent: each imports the common package and its own code, never another service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
PACKAGES = {"capture": "vidfleet_capture", "detector": "vidfleet_detector", "coordinator": "vidfleet_coordinator", "common": "vidfleet_common"}
HEAVY = {"torch", "ultralytics", "filterpy"}


def imported_modules(package_dir: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for file in package_dir.rglob("*.py"):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(file.relative_to(SERVICES)))
    return found


@pytest.mark.parametrize("service", sorted(PACKAGES))
def test_a_service_imports_no_other_service(service: str) -> None:
    package = PACKAGES[service]
    imports = imported_modules(SERVICES / service / "src" / package)
    allowed = {package, "vidfleet_common"}
    others = {p for p in PACKAGES.values() if p not in allowed}
    assert not {name: files for name, files in imports.items() if name in others}


@pytest.mark.parametrize("service", ["capture", "coordinator", "common"])
def test_cpu_services_never_name_torch(service: str) -> None:
    imports = imported_modules(SERVICES / service / "src" / PACKAGES[service])
    assert not {name: files for name, files in imports.items() if name in HEAVY}


@pytest.mark.parametrize("service", sorted(PACKAGES))
def test_every_source_folder_is_a_package_the_image_installs(service: str) -> None:
    """setuptools' find_packages (what the images' wheels use) skips a folder without __init__.py."""
    root = SERVICES / service / "src" / PACKAGES[service]
    folders = {f.parent for f in root.rglob("*.py")}
    assert [str(f.relative_to(SERVICES)) for f in sorted(folders) if not (f / "__init__.py").exists()] == []


def test_boto3_is_imported_only_by_the_object_storage_module() -> None:
    """The common package stays light: boto3 (the optional extra vidfleet-common[s3]) is named by one module,
    lazily, and the capture service never reaches it."""
    common = imported_modules(SERVICES / "common" / "src" / PACKAGES["common"])
    assert {f for name in ("boto3", "botocore") for f in common.get(name, set())} == {"common/src/vidfleet_common/objects.py"}
    assert not {"boto3", "botocore"} & set(imported_modules(SERVICES / "capture" / "src" / PACKAGES["capture"]))


def test_importing_the_common_package_and_capture_loads_no_boto3() -> None:
    import subprocess
    import sys

    code = "import sys, vidfleet_common.inputs, vidfleet_common.results, vidfleet_capture.cli; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_only_the_detector_and_coordinator_images_lock_boto3() -> None:
    locks = SERVICES.parent / "requirements"
    pinned = {svc: {line.split("==")[0].lower() for line in (locks / f"{svc}.lock").read_text().splitlines()} for svc in ("capture", "detector", "coordinator")}
    assert "boto3" not in pinned["capture"] and "boto3" in pinned["detector"] and "boto3" in pinned["coordinator"]
