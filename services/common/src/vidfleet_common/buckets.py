"""`s3://bucket/key` locations and their confinement, in plain Python (no S3 client: see vidfleet_common.objects).

A location ending in `/` (or naming only a bucket) is a prefix: every object under it. Output locations are
prefixes too: `s3://results/jobs/` + `<job id>/<video>.tracks.txt`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SCHEME = "s3://"


class BucketUrlError(ValueError):
    """Not a usable s3:// location; the text says why."""


def is_s3(text: str | object) -> bool:
    return isinstance(text, str) and text[:5].lower() == SCHEME


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, text: str) -> S3Url:
        if not is_s3(text):
            raise BucketUrlError(f"{text}: not an s3:// location")
        bucket, _, key = text[len(SCHEME):].partition("/")
        if not bucket:
            raise BucketUrlError(f"{text}: no bucket name (expected s3://bucket/key)")
        if "@" in bucket or ":" in bucket:
            raise BucketUrlError(f"{text}: credentials or a port do not belong in an s3:// location (use the AWS variables and VIDFLEET_S3_ENDPOINT_URL)")
        return cls(bucket, key)

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def child(self, relative: str) -> S3Url:
        """The location `relative` below this one (a prefix)."""
        base = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Url(self.bucket, base + relative.lstrip("/"))

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def join(location: str, relative: str) -> str:
    """`location` (a folder path or an s3:// prefix) joined with a relative name."""
    if is_s3(location):
        return str(S3Url.parse(location).child(relative))
    from pathlib import Path

    return str(Path(location) / relative)


def inside_buckets(url: S3Url, allowed: Sequence[str]) -> bool:
    """Whether `url` is inside one of `allowed` ("bucket" or "bucket/prefix/"): the bucket matches and the key
    starts with the prefix on a `/` boundary. `..` segments never pass: S3 keys are not paths, but a proxy
    or a reader that treats them as such must not be walked out of a prefix."""
    if any(part == ".." for part in url.key.split("/")):
        return False
    for entry in allowed:
        bucket, _, prefix = entry.removeprefix(SCHEME).partition("/")
        if bucket != url.bucket:
            continue
        if not prefix:
            return True
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        if url.key.startswith(prefix) or url.key + "/" == prefix:
            return True
    return False
