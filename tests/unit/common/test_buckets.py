"""s3:// locations, their confinement, and credentials kept out of every line (no server needed)."""

from __future__ import annotations

import pytest

from vidfleet_common.buckets import BucketUrlError, S3Url, inside_buckets, join
from vidfleet_common.errors import ConfigError
from vidfleet_common.inputs import resolve_inputs
from vidfleet_common.settings import Settings, load_settings, masked, scrub_url


@pytest.mark.parametrize(
    ("text", "bucket", "key", "prefix"),
    [
        ("s3://videos/cams/a.mp4", "videos", "cams/a.mp4", False),
        ("s3://videos/cams/", "videos", "cams/", True),
        ("s3://videos", "videos", "", True),
        ("S3://videos/x.mp4", "videos", "x.mp4", False),
    ],
)
def test_parse(text: str, bucket: str, key: str, prefix: bool) -> None:
    url = S3Url.parse(text)
    assert (url.bucket, url.key, url.is_prefix) == (bucket, key, prefix)


@pytest.mark.parametrize(("text", "reason"), [("s3:///key", "no bucket name"), ("s3://ak:sk@bucket/k", "credentials"), ("/data/x", "not an s3://")])
def test_parse_refuses_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(BucketUrlError, match=reason):
        S3Url.parse(text)


@pytest.mark.parametrize(
    ("url", "allowed", "inside"),
    [
        ("s3://videos/a.mp4", ["videos"], True),
        ("s3://videos/cams/a.mp4", ["videos/cams/"], True),
        ("s3://videos/cams/a.mp4", ["videos/cams"], True),
        ("s3://videos/cams", ["videos/cams/"], True),
        ("s3://videos/camsX/a.mp4", ["videos/cams"], False),  # a prefix ends on a '/' boundary
        ("s3://videos/other/a.mp4", ["videos/cams/"], False),
        ("s3://videos/cams/../secret/a.mp4", ["videos/cams/"], False),
        ("s3://videos2/a.mp4", ["videos"], False),
        ("s3://b/a.mp4", ["s3://b/"], True),
        ("s3://b/a.mp4", [], False),
    ],
)
def test_inside_buckets(url: str, allowed: list[str], inside: bool) -> None:
    assert inside_buckets(S3Url.parse(url), allowed) is inside


def test_join_keeps_s3_prefixes_and_paths_apart() -> None:
    assert join("s3://r/jobs/", "abc/result.json") == "s3://r/jobs/abc/result.json"
    assert join("s3://r/jobs", "abc/") == "s3://r/jobs/abc/"
    assert join("/data/results", "abc") == "/data/results/abc"


def test_presigned_urls_and_endpoint_credentials_are_scrubbed() -> None:
    url = "https://h/b/k.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAX%2F20261203&X-Amz-Signature=abc123&X-Amz-Security-Token=tok"
    scrubbed = scrub_url(url)
    assert "AKIAX" not in scrubbed and "abc123" not in scrubbed and "tok" not in scrubbed and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in scrubbed
    assert "Signature=***" in scrub_url("http://h/b/k?AWSAccessKeyId=AK&Signature=sig&Expires=1")
    shown = masked(Settings(s3_endpoint_url="http://user:pw@minio:9000", output_root="s3://r/jobs"))
    assert shown["s3_endpoint_url"] == "http://***@minio:9000" and shown["output_root"] == "s3://r/jobs/"


def test_an_s3_output_root_stays_a_location_and_is_confined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFLEET_OUTPUT_ROOT", "s3://results/jobs")
    monkeypatch.setenv("VIDFLEET_OUTPUT_BUCKETS", "results/jobs/")
    assert load_settings().output_root == "s3://results/jobs/"
    monkeypatch.setenv("VIDFLEET_OUTPUT_BUCKETS", "other")
    with pytest.raises(ConfigError, match="outside the output buckets"):
        load_settings()
    monkeypatch.setenv("VIDFLEET_S3_ADDRESSING_STYLE", "dns")
    with pytest.raises(ConfigError, match="s3_addressing_style"):
        load_settings()


def test_inputs_outside_the_buckets_fail_alone_without_touching_the_store() -> None:
    def no_store():  # noqa: ANN202 - the confinement is decided before any request
        raise AssertionError("no listing for a refused input")

    refs = resolve_inputs(["s3://other/a.mp4", "s3://videos/cams/b.mp4"], input_buckets=["videos/cams/"], object_store=no_store)
    assert [r.error for r in refs] == ["s3://other/a.mp4: outside the input buckets (videos/cams/)", None]
    assert refs[1].source == "s3://videos/cams/b.mp4" and refs[1].name == "b"
