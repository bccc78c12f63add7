"""Fixtures of the image-store tests: both backends — a local directory, and S3 on a real
S3-compatible server (moto's ``moto_server`` on a loopback port, started once per session by
``bench/_s3.py``), each test under a prefix of its own."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._s3 import local_s3
from core.settings import ImageStoreSettings, StorageSettings
from tests.api.conftest import api, make_api  # noqa: F401  (an app, with settings overrides)
from tests.workflows.conftest import order_stack  # noqa: F401  (the order-workflow fixture)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[StorageSettings]:
    """The session's moto server (server logs outside pytest's shared tmp), bucket ``stellar-frames``."""
    logs = Path(tempfile.mkdtemp(prefix="stellar-moto-"))
    try:
        with local_s3(logs, bucket="stellar-frames", prefix="unused") as cfg:
            yield cfg
    finally:
        shutil.rmtree(logs, ignore_errors=True)


@pytest.fixture(params=["local", "s3"])
def image_store(request, tmp_path) -> ImageStoreSettings:
    """``settings.image_store`` for each backend: ``file://`` a directory of the test's, or
    ``s3://stellar-frames/<unique prefix>`` on the moto server."""
    if request.param == "local":
        return ImageStoreSettings(url=(tmp_path / "image-store").as_uri())
    s3: StorageSettings = request.getfixturevalue("s3_server")
    return ImageStoreSettings(**(s3.model_dump() | {"url": f"s3://stellar-frames/t-{uuid.uuid4().hex[:10]}",
                                                    "access_key_id": s3.access_key_id.get_secret_value(),
                                                    "secret_access_key": s3.secret_access_key.get_secret_value()}))


def store_group(cfg: ImageStoreSettings) -> dict:
    """``cfg`` as a settings group for ``load_settings(image_store=...)`` (secrets in clear)."""
    return cfg.model_dump() | {"access_key_id": cfg.access_key_id.get_secret_value(),
                               "secret_access_key": cfg.secret_access_key.get_secret_value()}
