"""Outbox fixtures: a migrated database of the test's own (the sender claims every pending row, so
it must not see other suites' order events) and a real aiosmtpd sink on a free loopback port."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, Sequence

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

from core.database import make_engine, make_sessionmaker
from core.settings import Settings, load_settings
from mail.sink import prepare_maildir, read_sink, start_sink
from models.db import Customer, Order, OrderEvent
from tests.conftest import free_port
from tests.scratch_db import scratch_database


@dataclass
class Sink:
    directory: Path
    port: int
    controller: Controller | None = None

    def start(self, handler: Any = None) -> None:
        """Start listening (again) on ``port``; ``handler`` replaces the Maildir handler."""
        if handler is None:
            self.controller = start_sink(self.directory, port=self.port)
        else:
            prepare_maildir(self.directory)
            self.controller = Controller(handler, hostname="127.0.0.1", port=self.port)
            self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def messages(self, to: str | None = None) -> list:
        """What the sink received (only those addressed to ``to`` when given)."""
        if not (self.directory / "new").exists():
            return []
        return [m for m in read_sink(self.directory) if to is None or m["To"] == to]


@pytest.fixture
def sink_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: server data stays out of the shared basetemp.
    path = Path(tempfile.mkdtemp(prefix="stellar-mail-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sink(sink_dir) -> Iterator[Sink]:
    """A started sink storing into a Maildir."""
    s = Sink(sink_dir, free_port())
    s.start()
    yield s
    s.stop()


@pytest.fixture
def sink_down(sink_dir) -> Iterator[Sink]:
    """A sink on a free port that is not listening yet (``start()`` it)."""
    s = Sink(sink_dir, free_port())
    yield s
    s.stop()


class RefusingMailbox(Mailbox):
    """The Maildir sink, answering 550 to recipients whose address starts with ``nobody``."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def mail_settings(port: int, **mail: Any) -> Settings:
    return load_settings(env="test", mail={"host": "127.0.0.1", "port": port, "starttls": False,
                                           "retry_base_seconds": 0, **mail},
                         api={"public_url": "http://stellar.test"})


async def customer_with_order(sessions, email: str, *, events: Sequence[OrderEvent] = ()) -> tuple[int, int]:
    """A customer, one M42 order of theirs and ``events`` of that order; returns (customer id, order id).
    Today's schema (the migration test fills an older one with tests.scratch_db.insert_as_of_revision)."""
    async with sessions() as s:
        customer = Customer(email=email)
        s.add(customer)
        await s.flush()
        order = Order(customer_id=customer.id, target_name="M42", ra_j2000=5.588, dec_j2000=-5.39,
                      status="completed", cost=12, shots_total=5)
        s.add(order)
        await s.flush()
        for e in events:
            e.order_id = order.id
            s.add(e)
        await s.commit()
        return customer.id, order.id


@pytest_asyncio.fixture
async def outbox_db(engine, database_url) -> AsyncIterator[Any]:
    """An engine on a fresh database migrated to head."""
    async with scratch_database(engine, database_url, at_head=True) as url:
        eng = make_engine(url)
        try:
            yield eng
        finally:
            await eng.dispose()


@pytest.fixture
def outbox_sessions(outbox_db):
    return make_sessionmaker(outbox_db)
