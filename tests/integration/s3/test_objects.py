"""vidfleet_common.objects against the real server: multipart uploads, an object written once, listing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.s3 import WeedServer
from vidfleet_common import objects
from vidfleet_common.buckets import S3Url
from vidfleet_common.settings import Settings


@pytest.fixture
def store(s3_server: WeedServer) -> objects.ObjectStore:
    return objects.ObjectStore.from_settings(Settings(s3_endpoint_url=s3_server.endpoint, s3_addressing_style="path", s3_region="us-east-1"))


@pytest.fixture(autouse=True)
def credentials(s3_server: WeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)


def test_a_large_output_goes_up_in_parts_and_only_once(store: objects.ObjectStore, s3_server: WeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objects, "MULTIPART_BYTES", 5 * 1024 * 1024)  # S3's smallest part: three parts here
    big = tmp_path / "annotated.mp4"
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    bucket = s3_server.bucket("parts")
    target = S3Url(bucket, "jobs/j1/cam.annotated.mp4")

    assert store.upload_file(big, target) is True
    head = s3_server.client().head_object(Bucket=bucket, Key=target.key)
    assert head["ContentLength"] == big.stat().st_size and head["ETag"].strip('"').endswith("-3"), head["ETag"]
    assert s3_server.read(bucket, target.key) == big.read_bytes()

    assert store.upload_file(big, target) is False, "the same bytes are not written twice (a redelivered video)"
    big.write_bytes(os.urandom(1024))
    assert store.upload_file(big, target) is True, "different bytes replace the object"
    assert s3_server.read(bucket, target.key) == big.read_bytes()


def test_listing_is_recursive_and_skips_folder_markers(store: objects.ObjectStore, s3_server: WeedServer) -> None:
    bucket = s3_server.bucket("list")
    client = s3_server.client()
    for key in ("cams/a.mp4", "cams/deep/er/b.mp4", "cams/folder/", "other/c.mp4"):
        client.put_object(Bucket=bucket, Key=key, Body=b"" if key.endswith("/") else b"x")
    assert list(store.list_keys(S3Url(bucket, "cams/"))) == ["cams/a.mp4", "cams/deep/er/b.mp4"]
    with pytest.raises(objects.StorageError, match="bucket does not exist"):
        list(store.list_keys(S3Url("no-such-bucket-vf", "")))
