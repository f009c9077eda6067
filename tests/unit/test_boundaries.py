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
