"""A local S3-compatible server for the drill and the tests: moto's ``moto_server`` on a free
loopback port, with one bucket, and the ``StorageSettings`` that point Stellar at it (plain HTTP,
``allow_http``), the way production points it at its S3-compatible store."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from core.processes import Child, free_port, wait_for_port
from core.settings import StorageSettings

ACCESS_KEY = "drill-access-key"
SECRET_KEY = "drill-secret-key"


@contextlib.contextmanager
def local_s3(log_dir: Path, bucket: str = "stellar-backups", prefix: str = "prod") -> Iterator[StorageSettings]:
    """Run ``moto_server`` until the block ends; yields settings for ``s3://<bucket>/<prefix>``."""
    import boto3

    port = free_port()
    server = Child("moto_server", [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                   Path(log_dir) / "moto_server.log",
                   ready=lambda c: wait_for_port(port, 30, c.proc, "moto_server"))
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                     region_name="us-east-1").create_bucket(Bucket=bucket)
        yield StorageSettings(url=f"s3://{bucket}/{prefix}", endpoint=endpoint, allow_http=True,
                              access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
    finally:
        server.stop()
