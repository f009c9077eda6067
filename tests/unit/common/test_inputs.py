from pathlib import Path

import pytest

from vidfleet_common.inputs import resolve_inputs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folders_are_searched_recursively_by_extension(tmp_path: Path) -> None:
    _touch(tmp_path / "a.mp4")
    _touch(tmp_path / "sub" / "b.MOV")
    _touch(tmp_path / "sub" / "notes.txt")
    refs = resolve_inputs([str(tmp_path)])
    assert [r.name for r in refs] == ["a", "sub/b"]
    assert all(r.error is None for r in refs)


def test_a_file_named_directly_is_taken_whatever_its_extension(tmp_path: Path) -> None:
    refs = resolve_inputs([str(_touch(tmp_path / "clip.bin"))])
    assert refs[0].name == "clip" and refs[0].error is None


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("/does/not/exist.mp4", "no such file or folder"),
        ("ftp://host/v.mp4", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("http:///nohost.mp4", "no host"),
    ],
)
def test_refused_inputs_carry_their_reason(item: str, fragment: str) -> None:
    (ref,) = resolve_inputs([item])
    assert ref.error is not None and fragment in ref.error and ref.error_kind == "input"


def test_empty_folder_is_a_failure_not_silence(tmp_path: Path) -> None:
    (ref,) = resolve_inputs([str(tmp_path)])
    assert "no video files" in (ref.error or "")


def test_urls_get_a_name_and_credentials_are_scrubbed() -> None:
    (ref,) = resolve_inputs(["https://user:pw@host/videos/cam%201.mp4?sig=1"])
    assert ref.name == "cam 1" and ref.error is None
    assert "pw" not in ref.display


def test_duplicate_names_are_made_unique(tmp_path: Path) -> None:
    a = _touch(tmp_path / "x" / "v.mp4")
    b = _touch(tmp_path / "y" / "v.mp4")
    assert [r.name for r in resolve_inputs([str(a), str(b)])] == ["v", "v-2"]


def test_paths_must_stay_inside_the_input_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    inside = _touch(root / "ok.mp4")
    outside = _touch(tmp_path / "secret.mp4")
    (root / "link.mp4").symlink_to(outside)
    refs = resolve_inputs([str(inside), str(root / ".." / "secret.mp4"), str(root / "link.mp4")], input_roots=[root])
    assert refs[0].error is None
    assert all("outside the input roots" in (r.error or "") for r in refs[1:])
