"""Turn what the user named (files, folders, URLs) into a list of videos, each with a unique output name.

Inputs that cannot be used are kept, with the reason, so that they fail alone and visibly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from vidfleet_common.buckets import BucketUrlError, S3Url, inside_buckets, is_s3
from vidfleet_common.settings import scrub_url

if TYPE_CHECKING:
    from vidfleet_common.objects import ObjectStore

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp"}
)
DEFAULT_URL_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class VideoRef:
    """One video to process. `error` is set when the input was refused before any decoding."""

    source: str
    name: str
    error: str | None = None
    error_kind: str | None = None

    @property
    def is_url(self) -> bool:
        return "://" in self.source

    @property
    def display(self) -> str:
        return scrub_url(self.source)


def is_url(text: str) -> bool:
    return "://" in text


def inside_roots(path: Path, roots: Sequence[Path]) -> bool:
    """Whether `path`, resolved with its symlinks followed, is one of `roots` or below one."""
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in (r.resolve() for r in roots))


def _url_ref(url: str, schemes: Iterable[str]) -> VideoRef:
    parts = urlsplit(url)
    allowed = tuple(s.lower() for s in schemes)
    if parts.scheme.lower() not in allowed or not parts.netloc:
        reason = f"URL scheme '{parts.scheme}' is not allowed (allowed: {', '.join(allowed)})"
        if not parts.netloc and parts.scheme.lower() in allowed:
            reason = "URL has no host"
        return VideoRef(url, _url_name(url), error=f"{scrub_url(url)}: {reason}", error_kind="input")
    return VideoRef(url, _url_name(url))


def _url_name(url: str) -> str:
    stem = PurePosixPath(unquote(urlsplit(url).path)).stem
    return stem or "video"


def _folder_refs(folder: Path) -> list[VideoRef]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not files:
        exts = ", ".join(sorted(VIDEO_EXTENSIONS))
        return [VideoRef(str(folder), folder.name or "input", error=f"{folder}: no video files ({exts}) in this folder", error_kind="input")]
    return [VideoRef(str(p), p.relative_to(folder).with_suffix("").as_posix()) for p in files]


def _default_store() -> ObjectStore:
    from vidfleet_common.objects import default_store

    return default_store()


def _s3_refs(item: str, buckets: Sequence[str], store: Callable[[], ObjectStore]) -> list[VideoRef]:
    """One object, or every video object under a prefix (recursively, sub-path kept in the names).

    A key without a video extension is taken as a prefix, as a folder path without its trailing slash would be."""
    from vidfleet_common.objects import StorageError

    try:
        url = S3Url.parse(item)
    except BucketUrlError as exc:
        return [VideoRef(item, "input", error=str(exc), error_kind="input")]
    stem = PurePosixPath(url.key).stem or url.bucket
    if buckets and not inside_buckets(url, buckets):
        return [VideoRef(item, stem, error=f"{item}: outside the input buckets ({', '.join(buckets)})", error_kind="input")]
    if not url.is_prefix and PurePosixPath(url.key).suffix.lower() in VIDEO_EXTENSIONS:
        return [VideoRef(str(url), stem)]
    prefix = url if url.is_prefix else S3Url(url.bucket, url.key + "/")
    try:
        keys = [k for k in store().list_keys(prefix) if PurePosixPath(k).suffix.lower() in VIDEO_EXTENSIONS]
    except StorageError as exc:
        return [VideoRef(item, stem, error=str(exc), error_kind=exc.kind)]
    if not keys:
        exts = ", ".join(sorted(VIDEO_EXTENSIONS))
        return [VideoRef(item, stem, error=f"{prefix}: no video objects ({exts}) under this prefix", error_kind="input")]
    return [VideoRef(str(S3Url(url.bucket, k)), PurePosixPath(k[len(prefix.key):]).with_suffix("").as_posix()) for k in keys]


def resolve_inputs(
    inputs: Sequence[str],
    *,
    input_roots: Sequence[Path] = (),
    url_schemes: Iterable[str] = DEFAULT_URL_SCHEMES,
    input_buckets: Sequence[str] = (),
    object_store: Callable[[], ObjectStore] = _default_store,
) -> list[VideoRef]:
    """Expand files, folders (recursively, by video extension), s3:// objects and prefixes, and URLs into VideoRefs.

    With `input_roots`, paths must resolve (symlinks followed) inside one of them; with `input_buckets`,
    s3:// inputs must be inside one of those. Output names are unique: a repeated name gets a `-2`, `-3`... suffix.
    """
    refs: list[VideoRef] = []
    for item in inputs:
        if is_s3(item):
            refs.extend(_s3_refs(item, input_buckets, object_store))
            continue
        if is_url(item):
            refs.append(_url_ref(item, url_schemes))
            continue
        path = Path(item).expanduser()
        if input_roots and not inside_roots(path, input_roots):
            roots = ", ".join(str(r) for r in input_roots)
            refs.append(VideoRef(item, path.stem or "input", error=f"{item}: outside the input roots ({roots})", error_kind="input"))
        elif path.is_dir():
            refs.extend(_folder_refs(path))
        elif path.is_file():
            refs.append(VideoRef(str(path), path.stem))
        else:
            refs.append(VideoRef(item, path.stem or "input", error=f"{item}: no such file or folder", error_kind="input"))
    return _unique_names(refs)


def _unique_names(refs: list[VideoRef]) -> list[VideoRef]:
    seen: dict[str, int] = {}
    unique = []
    for ref in refs:
        count = seen.get(ref.name, 0) + 1
        seen[ref.name] = count
        if count > 1:
            ref = VideoRef(ref.source, f"{ref.name}-{count}", ref.error, ref.error_kind)
        unique.append(ref)
    return unique
