"""The Dockerfiles and the per-image locks, checked without a Docker engine: hadolint, structure, pinned bases,
COPY sources that exist and reach the build context, locks that are current, closed and free of torch where
they must be."""

from __future__ import annotations

import glob
import importlib.util
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from vidfleet_common.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("capture", "detector", "coordinator")
CMD = {
    "capture": ["vidfleet-capture", "worker"],
    "detector": ["vidfleet-detector", "worker"],
    "coordinator": ["vidfleet-coordinator", "serve"],
}
WORKDIR = {"capture": "/app", "coordinator": "/app", "detector": "/models"}  # the detector downloads named models into its workdir
PORTS = {
    "capture": Settings.model_fields["metrics_port"].default,
    "detector": Settings.model_fields["metrics_port"].default,
    "coordinator": Settings.model_fields["api_port"].default,
}
HEAVY = {"torch", "torchvision", "ultralytics", "ultralytics-opencv-headless", "filterpy"}
NON_HEADLESS_OPENCV = {"opencv-python", "opencv-contrib-python"}
UID = "10001"


def _load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


image_locks = _load_tool("image_locks")


# --- Dockerfile parsing -------------------------------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found, pending = [], ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        found.append((keyword.upper(), args.strip()))
    assert not pending, f"{dockerfile}: dangling line continuation"
    return found


def stages(dockerfile: Path) -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """Global ARG defaults, and the instructions of every stage (FROM first)."""
    global_args: dict[str, str] = {}
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(dockerfile):
        if keyword == "FROM":
            result.append([])
        if not result:
            assert keyword == "ARG", f"{dockerfile}: only ARG may come before the first FROM, found {keyword}"
            name, _, default = args.partition("=")
            global_args[name] = default
            continue
        result[-1].append((keyword, args))
    return global_args, result


def from_image(args: str, global_args: dict[str, str]) -> tuple[str, str | None]:
    """(image reference with ARG defaults substituted, stage name)."""
    parts = args.split()
    parts = [p for p in parts if not p.startswith("--platform")]
    image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m[1] or m[2]], parts[0])
    name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
    return image, name


def dockerfile(service: str) -> Path:
    return REPO_ROOT / "services" / service / "Dockerfile"


def final_stage(service: str) -> list[tuple[str, str]]:
    return stages(dockerfile(service))[1][-1]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for keyword, args in stage:
        if keyword == "ENV":
            env.update(dict(m.groups() for m in re.finditer(r"(\w+)=(\S+)", args)))
    return env


# --- Dockerfiles -------------------------------------------------------------------------------------------


def test_hadolint_passes_on_every_dockerfile() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    files = [str(dockerfile(s)) for s in SERVICES]
    out = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "warning", *files], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_base_images_are_pinned_to_exact_versions(service: str) -> None:
    global_args, all_stages = stages(dockerfile(service))
    names: set[str] = set()
    for stage in all_stages:
        image, name = from_image(stage[0][1], global_args)
        if image not in names:  # an earlier stage is not an image
            repo, _, tag = image.rpartition(":")
            assert repo and "/" not in tag, f"{service}: base image {image} has no tag"
            assert tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), f"{service}: base image {image} is not pinned to an exact version"
        if name:
            names.add(name)
    assert len(all_stages) >= 2, f"{service}: not a multi-stage build"


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_holds_the_venv_only_and_runs_as_the_vidfleet_user(service: str) -> None:
    global_args, all_stages = stages(dockerfile(service))
    final = all_stages[-1]
    builder_names = {from_image(s[0][1], global_args)[1] for s in all_stages[:-1]}
    for keyword, args in final:
        if keyword == "COPY":
            source = re.search(r"--from=(\S+)", args)
            assert source and source[1] in builder_names, f"{service}: the final stage copies from the build context: COPY {args}"
        if keyword == "RUN":
            assert not re.search(r"\b(pip|uv|apt-get|apt|gcc|make)\b", args), f"{service}: the final stage installs things: RUN {args}"
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1] == f"{UID}:{UID}", f"{service}: final USER must be numeric {UID}:{UID}, found {users}"
    assert all(k != "HEALTHCHECK" for stage in all_stages for k, _ in stage), f"{service}: Kubernetes probes do the health checks"
    assert [a for k, a in final if k == "WORKDIR"][-1] == WORKDIR[service]


@pytest.mark.parametrize("service", SERVICES)
def test_image_environment_command_and_port(service: str) -> None:
    final = final_stage(service)
    env = env_of(final)
    assert env["YOLO_CONFIG_DIR"] == "/tmp/ultralytics" and env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    known = {f"VIDFLEET_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("VIDFLEET_")} <= known
    if service == "coordinator":
        assert env["VIDFLEET_API_HOST"] == "0.0.0.0"
    if service == "detector":
        assert env["YOLO_AUTOINSTALL"] == "false"
    assert [json.loads(a) for k, a in final if k == "CMD"] == [CMD[service]]
    assert [a for k, a in final if k == "EXPOSE"] == [str(PORTS[service])]


def _pattern_regex(pattern: str) -> str:
    """A .dockerignore pattern (Go's filepath.Match plus `**`) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return out


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip("/"))
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


@pytest.mark.parametrize("service", SERVICES)
def test_copy_sources_exist_and_reach_the_build_context(service: str) -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copies = [args for stage in stages(dockerfile(service))[1] for k, args in stage if k == "COPY" and "--from=" not in args]
    assert copies
    for args in copies:
        *sources, _dest = args.split()
        for source in sources:
            matches = glob.glob(source, root_dir=REPO_ROOT)
            assert matches, f"{service}: COPY source {source} does not exist"
            for match in matches:
                files = [match] if (REPO_ROOT / match).is_file() else [
                    str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / match).rglob("*") if p.is_file() and "__pycache__" not in p.parts
                ]
                sent = [f for f in files if not _dockerignored(f, patterns)]
                assert sent, f"{service}: COPY source {match} is excluded by .dockerignore"
                if match.startswith("services/"):
                    assert any(f.endswith("pyproject.toml") for f in sent)


def test_dockerignore_matcher_follows_docker_rules() -> None:
    patterns = ["*", "!services/", "**/__pycache__"]
    assert _dockerignored("README.md", patterns)
    assert not _dockerignored("services/common/pyproject.toml", patterns)
    assert _dockerignored("services/common/src/x/__pycache__/a.pyc", patterns)


def test_detector_installs_the_cuda_build_of_the_locked_torch() -> None:
    global_args, all_stages = stages(dockerfile("detector"))
    text = dockerfile("detector").read_text()
    pins = image_locks.dev_pins()
    torch, vision = pins[canonicalize_name("torch")][1], pins[canonicalize_name("torchvision")][1]
    assert f"torch=={torch}+${{TORCH_VARIANT}}" in text and f"torchvision=={vision}+${{TORCH_VARIANT}}" in text
    assert "https://download.pytorch.org/whl/${TORCH_VARIANT}" in text
    variant = [a for stage in all_stages for k, a in stage if k == "ARG" and a.startswith("TORCH_VARIANT=")]
    assert variant and re.fullmatch(r"TORCH_VARIANT=cu12\d", variant[0]), variant
    assert from_image(all_stages[-1][0][1], global_args)[0].startswith("nvidia/cuda:12.")


# --- Locks -------------------------------------------------------------------------------------------------


def lock_pins(service: str) -> dict[str, str]:
    pins = {}
    for line in image_locks.lock_path(service).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


@pytest.mark.parametrize("service", [*image_locks.IMAGES, "build"])
def test_image_locks_are_current_with_dev_lock(service: str) -> None:
    expected = image_locks.render_build() if service == "build" else image_locks.render(service)
    assert image_locks.lock_path(service).read_text() == expected, "stale image lock: run .venv/bin/python tools/image_locks.py"


@pytest.mark.parametrize("service", image_locks.IMAGES)
def test_image_lock_is_closed(service: str) -> None:
    """Installed with --no-deps, a lock must hold every dependency of what it holds (markers for the image)."""
    pins = lock_pins(service)
    local = {canonicalize_name(f"vidfleet-{s}") for s in ("common", service)}
    torch_build = set()
    if service == "detector":
        torch_build = {canonicalize_name(n) for n in ("torch", "torchvision")}
    roots = [(d, set()) for d in [*pins, *local, *torch_build]]
    for name, extras in roots:
        if name in torch_build:
            continue  # installed from the PyTorch index with its own dependencies
        for text in metadata.distribution(name).requires or []:
            req = Requirement(text)
            dep = canonicalize_name(req.name)
            if not image_locks._applies(req.marker, extras):
                continue
            if dep in local or dep in torch_build:
                continue
            assert dep in pins, f"{service}: {name} needs {req}, which the lock lacks"
            assert req.specifier.contains(pins[dep], prereleases=True), f"{service}: {name} needs {req}, the lock pins {pins[dep]}"


@pytest.mark.parametrize("service", image_locks.IMAGES)
def test_image_locks_keep_the_image_rules(service: str) -> None:
    pins = set(lock_pins(service))
    assert not pins & NON_HEADLESS_OPENCV
    assert "torch" not in pins and "torchvision" not in pins  # CPU images: none; detector: from the PyTorch index
    if service in ("capture", "coordinator"):
        assert not pins & HEAVY, f"{service} must not contain {pins & HEAVY}"
    if service == "coordinator":
        assert not any(p.startswith("opencv") for p in pins)
    else:
        assert sorted(p for p in pins if p.startswith("opencv")) == ["opencv-python-headless"]
    if service == "detector":
        assert {"ultralytics-opencv-headless", "filterpy"} <= pins


# --- The build-time check ----------------------------------------------------------------------------------


def _fake_site(tmp_path: Path, dists: dict[str, str]) -> Path:
    site = tmp_path / "site-packages"
    for name, version in dists.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return site


BASE = {"vidfleet-common": "0.1.0", "numpy": "2.4.6"}
HEADLESS = {"opencv-python-headless": "5.0.0.93"}
DETECTOR = {"vidfleet-detector": "0.1.0", **HEADLESS, "torch": "2.14.1+cu126", "torchvision": "0.29.1+cu126"}


@pytest.mark.parametrize(
    ("image", "extra", "complaint"),
    [
        ("capture", {"vidfleet-capture": "0.1.0", "opencv-python-headless": "5.0.0.93"}, None),
        ("capture", {"vidfleet-capture": "0.1.0", "opencv-python-headless": "5.0.0.93", "torch": "2.14.1"}, "must not contain torch"),
        ("capture", {"vidfleet-capture": "0.1.0", "opencv-python-headless": "5.0.0.93", "filterpy": "1.4.5"}, "must not contain filterpy"),
        ("capture", {"vidfleet-capture": "0.1.0"}, "expected exactly one OpenCV"),
        ("coordinator", {"vidfleet-coordinator": "0.1.0"}, None),
        ("coordinator", {"vidfleet-coordinator": "0.1.0", "ultralytics-opencv-headless": "8.4.190"}, "must not contain ultralytics"),
        ("coordinator", {"vidfleet-coordinator": "0.1.0", "opencv-python-headless": "5.0.0.93"}, "no OpenCV expected"),
        ("coordinator", {}, "vidfleet-coordinator is not installed"),
        ("detector", DETECTOR, None),
        ("detector", {**DETECTOR, "opencv-python": "5.0.0.93"}, "expected exactly one OpenCV"),
        ("detector", {**DETECTOR, "torch": "2.13.0"}, "torch: expected 2.14.1"),
        ("detector", {**DETECTOR, "torchvision": None}, "torchvision: expected 0.29.1, found None"),
    ],
)
def test_build_time_check_refuses_an_environment_that_breaks_the_rules(
    tmp_path: Path, image: str, extra: dict[str, str | None], complaint: str | None
) -> None:
    site = _fake_site(tmp_path, {k: v for k, v in {**BASE, **extra}.items() if v is not None})
    check = [sys.executable, str(REPO_ROOT / "tools" / "check_image.py"), image, "--path", str(site)]
    out = subprocess.run(check, capture_output=True, text=True)
    if complaint is None:
        assert out.returncode == 0, out.stderr
        assert out.stderr == ""
    else:
        assert out.returncode == 1
        assert complaint in out.stderr


def test_build_time_check_pins_the_torch_of_dev_lock() -> None:
    check_image = _load_tool("check_image")
    pins = image_locks.dev_pins()
    assert check_image.TORCH == {n: pins[canonicalize_name(n)][1] for n in ("torch", "torchvision")}
