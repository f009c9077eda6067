"""S3-compatible object storage through boto3 (the optional extra `vidfleet-common[s3]`).

Credentials come from boto3's standard chain only (environment, shared profile, web identity / IRSA,
container and instance metadata): never from a job, never logged. Every failure is a StorageError whose
text is one line naming the location and the reason; the secret key and presigned signatures never
appear in it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from vidfleet_common.buckets import S3Url
from vidfleet_common.errors import VidfleetError
from vidfleet_common.settings import Settings, scrub_url

log = logging.getLogger("vidfleet.objects")

CHECKSUM_META = "vidfleet-sha256"
MULTIPART_BYTES = 64 * 1024 * 1024
# Whole-upload attempts on top of botocore's own per-request retries: an endpoint away for ~half a minute
# must not lose a finished video.
UPLOAD_ATTEMPTS = 4
UPLOAD_BACKOFF_S = 2.0

_MISSING_CREDENTIALS = (
    "no S3 credentials found (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity / IRSA or instance metadata)"
)
# S3 error code -> (what the user reads, error kind)
_CODES = {
    "NoSuchBucket": ("bucket does not exist", "input"),
    "NoSuchKey": ("no such object", "input"),
    "404": ("no such object", "input"),
    "NotFound": ("no such object", "input"),
    "AccessDenied": ("access denied", "access"),
    "403": ("access denied", "access"),
    "Forbidden": ("access denied", "access"),
    "AllAccessDisabled": ("access denied", "access"),
    "InvalidAccessKeyId": ("wrong credentials: the endpoint does not know this access key", "credentials"),
    "SignatureDoesNotMatch": ("wrong credentials: the secret key does not match the access key", "credentials"),
    "ExpiredToken": ("credentials expired (session token)", "credentials"),
    "InvalidToken": ("wrong credentials: invalid session token", "credentials"),
    "InvalidBucketName": ("invalid bucket name", "input"),
}


class StorageError(VidfleetError):
    """An object store operation failed; `kind` is the error kind recorded with the video."""

    def __init__(self, message: str, kind: str = "storage") -> None:
        super().__init__(scrub_url(message))
        self.kind = kind


def describe(exc: BaseException, where: S3Url | str) -> StorageError:
    """One line for a boto3/botocore failure at `where`."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, PartialCredentialsError

    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        reason, kind = _CODES.get(code, (f"{code or 'error'}: {error.get('Message', '')}".strip(": "), "storage"))
        if code in ("404", "NotFound") and isinstance(where, S3Url) and not where.key:
            reason = "bucket does not exist"
        return StorageError(f"{where}: {reason}", kind)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StorageError(f"{where}: {_MISSING_CREDENTIALS}", "credentials")
    if isinstance(exc, EndpointConnectionError):
        return StorageError(f"{where}: S3 endpoint unreachable ({exc.kwargs.get('endpoint_url', 'endpoint')})", "storage")
    return StorageError(f"{where}: {type(exc).__name__}: {exc}", "storage")


def client_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of boto3's client('s3', ...) for these settings (no credentials: the standard chain)."""
    from botocore.config import Config

    s3: dict[str, Any] = {}
    if settings.s3_addressing_style != "auto":
        s3["addressing_style"] = settings.s3_addressing_style
    config = Config(
        signature_version="s3v4",
        s3=s3 or None,
        retries={"mode": "standard", "max_attempts": settings.s3_max_attempts},
        connect_timeout=5,
        read_timeout=60,
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.s3_endpoint_url:
        kwargs["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_region:
        kwargs["region_name"] = settings.s3_region
    return kwargs


class ObjectStore:
    """What vidfleet does with a bucket: list videos, hand the decoder a URL, upload outputs, write result.json."""

    def __init__(self, client: Any, *, url_seconds: int = 3600) -> None:
        self.client = client
        self.url_seconds = url_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:
        import boto3

        return cls(boto3.session.Session().client("s3", **client_config(settings)), url_seconds=settings.s3_url_seconds)

    def list_keys(self, prefix: S3Url) -> Iterator[str]:
        """Every key under `prefix` (recursively), in key order."""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key):
                for item in page.get("Contents", ()):
                    if not item["Key"].endswith("/"):
                        yield item["Key"]
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            raise describe(exc, prefix) from None

    def head(self, url: S3Url) -> dict[str, Any]:
        try:
            return self.client.head_object(Bucket=url.bucket, Key=url.key)
        except Exception as exc:  # noqa: BLE001
            error = describe(exc, url)
        if error.kind in ("access", "input"):
            # A HEAD reply has no body, so no error code: 403 may be a wrong key, 404 a missing bucket.
            # A one-byte GET says which.
            try:
                self.client.get_object(Bucket=url.bucket, Key=url.key, Range="bytes=0-0")
            except Exception as exc:  # noqa: BLE001
                detailed = describe(exc, url)
                if detailed.kind != "storage":
                    error = detailed
        raise error

    def presigned_get(self, url: S3Url) -> str:
        """A time-limited GET URL for the decoder: FFmpeg reads it with ranged HTTP requests, never the whole object."""
        try:
            return self.client.generate_presigned_url("get_object", Params={"Bucket": url.bucket, "Key": url.key}, ExpiresIn=self.url_seconds)
        except Exception as exc:  # noqa: BLE001
            raise describe(exc, url) from None

    def upload_file(self, path: Path, url: S3Url) -> bool:
        """Upload `path` (multipart past MULTIPART_BYTES) unless the object already holds the same bytes; True if
        it uploaded. An object appears whole or not at all. Transient failures are retried with backoff."""
        from boto3.s3.transfer import TransferConfig

        digest = sha256_file(path)
        if self._holds(url, digest):
            return False
        transfer = TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES, max_concurrency=4)
        self._retry(
            url,
            lambda: self.client.upload_file(str(path), url.bucket, url.key, ExtraArgs={"Metadata": {CHECKSUM_META: digest}}, Config=transfer),
        )
        return True

    def put_bytes(self, data: bytes, url: S3Url, *, content_type: str = "application/octet-stream") -> None:
        self._retry(url, lambda: self.client.put_object(Bucket=url.bucket, Key=url.key, Body=data, ContentType=content_type))

    def get_bytes(self, url: S3Url) -> bytes:
        try:
            return self.client.get_object(Bucket=url.bucket, Key=url.key)["Body"].read()
        except Exception as exc:  # noqa: BLE001
            raise describe(exc, url) from None

    def exists(self, url: S3Url) -> bool:
        try:
            self.head(url)
            return True
        except StorageError as exc:
            if exc.kind == "input":
                return False
            raise

    def _holds(self, url: S3Url, digest: str) -> bool:
        try:
            meta = self.client.head_object(Bucket=url.bucket, Key=url.key).get("Metadata", {})
        except Exception:  # noqa: BLE001 - absent, or unreadable: upload it
            return False
        return meta.get(CHECKSUM_META) == digest

    def _retry(self, url: S3Url, operation: Any) -> None:
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                operation()
                return
            except Exception as exc:  # noqa: BLE001
                error = describe(_unwrap(exc), url)
                if error.kind in ("access", "credentials", "input") or attempt == UPLOAD_ATTEMPTS:
                    suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise StorageError(f"cannot save {error}{suffix}", error.kind) from None
                log.warning("upload to %s failed (%s), attempt %d of %d; retrying", url, error, attempt, UPLOAD_ATTEMPTS)
                time.sleep(UPLOAD_BACKOFF_S * 2 ** (attempt - 1))


def _unwrap(exc: BaseException) -> BaseException:
    """s3transfer wraps the ClientError of a failed upload in S3UploadFailedError: classify the original."""
    from boto3.exceptions import S3UploadFailedError

    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, Exception):
        return exc.__context__
    return exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION")


def default_store(settings: Settings | None = None) -> ObjectStore:
    """One ObjectStore per process and environment (boto3 clients are thread-safe and costly to build)."""
    settings = settings or Settings()
    env = tuple(os.environ.get(k) for k in _ENV_KEYS)
    return _cached_store(settings.s3_endpoint_url, settings.s3_region, settings.s3_addressing_style, settings.s3_url_seconds, settings.s3_max_attempts, env)


@lru_cache(maxsize=8)
def _cached_store(endpoint: str | None, region: str | None, style: str, url_seconds: int, attempts: int, _env: tuple[str | None, ...]) -> ObjectStore:
    settings = Settings(s3_endpoint_url=endpoint, s3_region=region, s3_addressing_style=style, s3_url_seconds=url_seconds, s3_max_attempts=attempts)
    return ObjectStore.from_settings(settings)
