"""Process settings, from the environment: typed, validated at start-up, printable with secrets masked."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vidfleet_common.errors import ConfigError
from vidfleet_common.validation import describe_validation_error

ENV_PREFIX = "VIDFLEET_"
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^@/\s]+)@", re.IGNORECASE)
# Presigned S3 URLs carry the access key id, a signature and maybe a session token in their query.
_SIGNED_QUERY = re.compile(
    r"(?P<key>X-Amz-(?:Credential|Signature|Security-Token)|AWSAccessKeyId|Signature|x-amz-security-token)=[^&\s]+", re.IGNORECASE
)


def scrub_url(text: str) -> str:
    """Mask `user:password@` and presigned-URL credentials in every URL of `text` (safe for log lines)."""
    return _SIGNED_QUERY.sub(lambda m: f"{m['key']}=***", _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}***@", text))


def _output_root(value: object) -> object:
    """An s3:// output root stays a string (a Path would fold its '//'); anything else is a folder."""
    if isinstance(value, str) and value[:5].lower() == "s3://":
        return value if value.endswith("/") else value + "/"
    return Path(value) if isinstance(value, str) else value


def _comma_list(value: object) -> object:
    """Lists in the environment are comma-separated: VIDFLEET_INPUT_ROOTS=/data/a,/data/b."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = BeforeValidator(_comma_list)


class Settings(BaseSettings):
    """Everything a vidfleet process reads from its environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    broker_url: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"),
        validation_alias="CELERY_BROKER_URL",
        description="Celery broker (Redis); may carry a password and use rediss:// for TLS.",
    )
    result_backend: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"),
        validation_alias="CELERY_RESULT_BACKEND",
        description="Celery result backend.",
    )
    key_prefix: str = Field("vidfleet:", min_length=1, description="Prefix of every Redis key vidfleet writes.")
    input_roots: Annotated[list[Path], NoDecode, CommaList] = Field(default_factory=list, description="Folders that job file paths must resolve inside.")
    allowed_url_schemes: Annotated[list[str], NoDecode, CommaList] = Field(["http", "https"], description="URL schemes accepted as video inputs.")
    stream_url_schemes: Annotated[list[str], NoDecode, CommaList] = Field(
        ["rtsp", "rtsps", "http", "https"], description="URL schemes accepted as live stream sources."
    )
    output_root: Annotated[Path | str, BeforeValidator(_output_root)] = Field(
        Path("results"), description="Where job outputs are written: a folder, or an s3://bucket/prefix/."
    )
    input_buckets: Annotated[list[str], NoDecode, CommaList] = Field(
        default_factory=list, description="Buckets (bucket or bucket/prefix/) that s3:// inputs must be inside; none: s3:// inputs refused on the fleet."
    )
    output_buckets: Annotated[list[str], NoDecode, CommaList] = Field(
        default_factory=list, description="Buckets (bucket or bucket/prefix/) that s3:// outputs must be inside; none: unconfined."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 API endpoint (MinIO, Ceph, SeaweedFS, GCS...); unset: AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL, else AWS."
    )
    s3_region: str | None = Field(None, description="S3 region; unset: AWS_REGION / AWS_DEFAULT_REGION / the profile's.")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="path for most self-hosted endpoints (http://host/bucket/key); virtual for bucket.host."
    )
    s3_url_seconds: int = Field(3600, ge=60, le=604_800, description="Lifetime of the presigned GET URL a decoder reads an object through.")
    s3_max_attempts: int = Field(5, ge=1, le=20, description="Attempts per S3 request (botocore standard retry mode, with backoff).")
    api_token: SecretStr | None = Field(None, description="Bearer token required by the coordinator API.")
    server: str = Field("http://localhost:8000", description="Coordinator URL used by the vidfleet CLI.")
    yolo_config_dir: Path | None = Field(None, description="Writable folder for ultralytics' settings file.")
    api_host: str = Field("127.0.0.1", description="Address the coordinator API listens on (0.0.0.0 in a pod).")
    api_port: int = Field(8000, ge=1, le=65535, description="Port of the coordinator API (and its /metrics).")
    metrics_port: int = Field(9101, ge=1, le=65535, description="Port a worker serves /metrics on.")
    redis_ca_file: Path | None = Field(None, description="CA bundle to verify Redis TLS (rediss://) certificates; system CAs if unset.")
    worker_lost_seconds: float = Field(
        30.0, ge=1, description="A worker process whose heartbeat stops this long has its running videos put back in the queue."
    )
    visibility_timeout: int = Field(
        10_800, ge=10, description="Seconds before an unacknowledged task is redelivered; longer than the longest video."
    )

    @model_validator(mode="after")
    def _output_root_in_buckets(self) -> Settings:
        from vidfleet_common.buckets import S3Url, inside_buckets

        if isinstance(self.output_root, str):
            root = S3Url.parse(self.output_root)
            if self.output_buckets and not inside_buckets(root, self.output_buckets):
                raise ValueError(f"output_root {root} is outside the output buckets ({', '.join(self.output_buckets)})")
        return self


def unknown_env_vars(environ: Mapping[str, str] | None = None) -> list[str]:
    """VIDFLEET_* variables that no setting reads (a typo must not pass silently)."""
    environ = os.environ if environ is None else environ
    known = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    return sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


def load_settings() -> Settings:
    """Read and validate settings from the environment; unknown VIDFLEET_* variables are an error."""
    unknown = unknown_env_vars()
    if unknown:
        raise ConfigError(f"unknown environment variable(s): {', '.join(unknown)}")
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, what="setting")) from None


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain values, secrets shown as '***' and URLs scrubbed."""
    shown: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = scrub_url(value.get_secret_value()) if name.endswith("_url") or name == "result_backend" else "***"
        elif isinstance(value, str):
            value = scrub_url(value)
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, list):
            value = [str(v) for v in value]
        shown[name] = value
    return shown
