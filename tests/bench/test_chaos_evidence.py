"""The chaos benchmark's evidence of a broken promise (bench/_chaos_evidence.py): an accepted order
without a row is found, its workflow's end is read from its history, the logs' lines naming it
(and only it) are quoted, PostgreSQL's stops and recoveries are listed."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench._chaos_evidence import evidence, missing_orders
from tests.workflows.support import create_customer, create_order


async def test_the_evidence_names_the_order_without_a_row_its_workflow_end_its_log_lines_and_postgres_restarts(
        engine, temporal_env, tmp_path: Path):
    customer = await create_customer(engine, 0)
    present = await create_order(engine, customer, [{"filter": "L", "exposure": 60, "quantity": 1}])
    gone = 2_000_000_000 + random.randrange(100_000_000)  # far above any test's order id
    client = temporal_env.client
    try:
        assert await missing_orders(engine, [present, gone, gone]) == [gone]

        # The vanished order's workflow, ended as a support action would end it.
        handle = await client.start_workflow("OrderWorkflow", id=f"order-{gone}",
                                             task_queue=f"evidence-{uuid.uuid4().hex[:6]}")
        await handle.terminate(reason="ended by the evidence test")
        api_log, pg_log = tmp_path / "api.log", tmp_path / "postgres.log"
        api_log.write_text(f"order.created order_id={gone} cost=4\norder.created order_id={gone}1 cost=4\n"
                           f"order {present}: stopped\n")
        pg_log.write_text(
            "LOG:  received fast shutdown request\n"
            "FATAL:  terminating connection due to administrator command\n"
            "LOG:  database system is shut down\n"
            "LOG:  database system was interrupted; last known up at 01:52\n"
            "FATAL:  the database system is starting up\n"
            "LOG:  redo done at 0/1C21800\n")

        text = await evidence(engine, client, [present, gone], [gone], [api_log, tmp_path / "worker.log"], pg_log)
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM order_shot WHERE order_id = :o"), {"o": present})
            await conn.execute(sa.text('DELETE FROM "order" WHERE id = :o'), {"o": present})
            await conn.execute(sa.text("DELETE FROM customer WHERE id = :c"), {"c": customer})

    assert f"order {gone} in other tables" in text and "holds none" in text, text
    assert f"order-{gone}: TERMINATED; workflow_execution_terminated at" in text, text
    assert "ended by the evidence test" in text, text
    assert f"order_id={gone} cost=4" in text and f"order_id={gone}1" not in text, text
    assert f"order {present}: stopped" not in text and "(worker.log: no log)" in text, text
    assert "received fast shutdown request" in text and "redo done" in text, text
    assert "database system was interrupted" in text and "terminating connection" not in text, text
    assert "(2 client connections refused or cut" in text, text
