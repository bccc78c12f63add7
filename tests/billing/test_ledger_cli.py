"""``stellar ledger check`` against the real database: exit 0 when consistent, 1 on a violation."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa
from typer.testing import CliRunner

from core.database import make_engine
from core.settings import get_settings
from stellar_cli.ledger import app


def _sql(url: str, statements: list[str], params: dict) -> list:
    async def run():
        engine = make_engine(url, pool_size=1)
        try:
            async with engine.begin() as conn:
                results = [await conn.execute(sa.text(s), params) for s in statements]
                return [r.scalar() if r.returns_rows else None for r in results]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_ledger_check_exits_non_zero_on_a_violation(database_url, monkeypatch):
    monkeypatch.setenv("STELLAR_DATABASE__URL", database_url)
    get_settings.cache_clear()
    try:
        [cid, *_] = _sql(database_url, [
            "INSERT INTO customer (email, name, created_at) VALUES (:e, 'cli', now()) RETURNING id",
        ], {"e": f"ledger-cli-{uuid.uuid4()}@example.com"})
        runner = CliRunner()
        ok = runner.invoke(app, ["check", "--customer", str(cid)])
        assert ok.exit_code == 0 and "ledger OK" in ok.output
        # an account that claims credits no entry explains
        _sql(database_url, ["INSERT INTO credit_account (customer_id, subscription_credits, pack_credits, held, "
                            "updated_at) VALUES (:c, 0, 7, 0, now())"], {"c": cid})
        bad = runner.invoke(app, ["check", "--customer", str(cid)])
        assert bad.exit_code == 1 and "pack_balance" in bad.output
        shown = runner.invoke(app, ["balance", str(cid)])
        assert shown.exit_code == 0 and "pack 7" in shown.output
    finally:
        _sql(database_url, ["DELETE FROM credit_account WHERE customer_id = :c"], {"c": cid})
        get_settings.cache_clear()


def test_ledger_check_accounts_for_debt(database_url, monkeypatch):
    """A clawback beyond the bucket leaves a debt the check explains; a debt no entry explains fails."""
    from billing.ledger import Ledger

    monkeypatch.setenv("STELLAR_DATABASE__URL", database_url)
    get_settings.cache_clear()
    [cid] = _sql(database_url, ["INSERT INTO customer (email, name, created_at) VALUES (:e, 'cli', now()) RETURNING id"],
                 {"e": f"ledger-debt-{uuid.uuid4()}@example.com"})

    async def owe():
        engine = make_engine(database_url, pool_size=1)
        try:
            ledger = Ledger(engine)
            await ledger.grant(cid, 10, "pack", f"cli:{uuid.uuid4()}", "payment", "cli")
            await ledger.hold(cid, cid * 1000 + 7, 8)
            await ledger.capture(cid * 1000 + 7, 8)
            async with engine.begin() as conn:
                await Ledger.bound(conn).clawback(cid, "pack", 10, f"cli-claw:{cid}", "charge", "ch_cli")
        finally:
            await engine.dispose()

    try:
        asyncio.run(owe())
        runner = CliRunner()
        ok = runner.invoke(app, ["check", "--customer", str(cid)])
        assert ok.exit_code == 0 and "ledger OK" in ok.output, ok.output
        shown = runner.invoke(app, ["balance", str(cid)])
        assert "available -8" in shown.output and "debt 8" in shown.output
        _sql(database_url, ["UPDATE credit_account SET debt = 3 WHERE customer_id = :c"], {"c": cid})
        bad = runner.invoke(app, ["check", "--customer", str(cid)])
        assert bad.exit_code == 1 and "debt_balance" in bad.output
    finally:
        _sql(database_url, ["UPDATE credit_account SET debt = 8 WHERE customer_id = :c"], {"c": cid})
        get_settings.cache_clear()
