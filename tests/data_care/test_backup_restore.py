"""Backups and point-in-time restore: the short drill (the full one is ``make drill``), the refusals
of bad input, and a store that cannot be reached failing loudly — never reported as a success."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.worker import Worker

from activities.backup_ops import BackupActivities
from bench.drill import run_drill
from core.backup_catalog import list_base_backups
from core.embedded_postgres import EmbeddedPostgres
from core.object_store import ObjectStoreError, open_store
from core.pg_backup import prune, take_base_backup
from core.processes import free_port
from core.settings import StorageSettings, load_settings
from models.data_care import BackupInput, BackupReport
from workflows.backup import BackupWorkflow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server_dir():
    """A directory for PostgreSQL data of our own, outside pytest's shared, rotated temporary root
    (another session's clean-up removing a running server's data directory kills the server)."""
    with tempfile.TemporaryDirectory(prefix="stellar-data-care-") as tmp:
        yield Path(tmp)


async def test_short_drill_restores_the_chosen_moment_exactly_and_latest_loses_seconds(server_dir):
    res = await run_drill(server_dir, duration=4, marker_interval=0.5, wal_upload_interval=1, customers=3,
                          measure_rto=False)
    assert res.markers >= 4
    assert res.pitr_rows_compared > 0
    assert (res.pitr_rows_missing, res.pitr_rows_after) == (0, 0)
    assert res.pitr_ledger_check == "ledger OK"
    assert res.latest_ledger_check == "ledger OK" and res.latest_rows_missing == 0
    assert 0 <= res.rpo_seconds <= 60


@pytest.fixture(scope="module")
def backed_up():
    """A small embedded PostgreSQL with one base backup in a local store: (server, storage)."""
    with tempfile.TemporaryDirectory(prefix="stellar-backup-src-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), database="stellar")
        pg.start()
        try:
            storage = StorageSettings(local_dir=Path(tmp) / "store")
            take_base_backup(pg.url(), open_store(storage))
            yield pg, storage
        finally:
            pg.stop()


def _stellar(args: list[str], storage: StorageSettings, url: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "STELLAR_DATABASE__URL": url, "STELLAR_STORAGE__URL": storage.url,
           "STELLAR_STORAGE__LOCAL_DIR": str(storage.local_dir), "STELLAR_STORAGE__TIMEOUT": "3",
           "STELLAR_STORAGE__ENDPOINT": storage.endpoint or "", "STELLAR_STORAGE__ALLOW_HTTP": "true"}
    return subprocess.run([sys.executable, "-m", "stellar_cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_restore_refuses_a_moment_in_the_future_or_before_the_oldest_backup(backed_up, tmp_path):
    pg, storage = backed_up
    oldest = list_base_backups(open_store(storage))[0].restorable_from
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = _stellar(["restore", "--to", future, "--into", str(tmp_path / "a")], storage, pg.url())
    assert r.returncode == 2 and "in the future" in r.stderr
    before = (oldest - timedelta(minutes=5)).isoformat()
    r = _stellar(["restore", "--to", before, "--into", str(tmp_path / "b")], storage, pg.url())
    assert r.returncode == 2 and "before the oldest backup" in r.stderr
    assert oldest.isoformat()[:19] in r.stderr.replace("\n", "")
    r = _stellar(["restore", "--to", "last tuesday", "--into", str(tmp_path / "c")], storage, pg.url())
    assert r.returncode == 2
    assert not any((tmp_path / d).exists() for d in "abc")


def test_restore_refuses_a_non_empty_target(backed_up, tmp_path):
    pg, storage = backed_up
    (tmp_path / "keep.txt").write_text("someone's data")
    r = _stellar(["restore", "--to", "latest", "--into", str(tmp_path)], storage, pg.url())
    assert r.returncode == 2 and "not an empty directory" in r.stderr.replace("\n", " ")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_backup_to_an_unreachable_store_fails_loudly(backed_up):
    pg, _ = backed_up
    dead = StorageSettings(url="s3://nowhere/backups", endpoint=f"http://127.0.0.1:{free_port()}", allow_http=True,
                           access_key_id="x", secret_access_key="y", timeout=3)
    r = _stellar(["backup"], dead, pg.url())
    assert r.returncode == 1
    assert "backup FAILED" in r.stderr and "nowhere" in r.stderr.replace("\n", "")
    with pytest.raises(ObjectStoreError):
        list_base_backups(open_store(dead))


async def test_scheduled_backup_retries_an_unreachable_store_then_fails(backed_up, skipping_clock_env, task_queue):
    pg, _ = backed_up
    settings = load_settings(database={"url": pg.url()}, storage={
        "url": "s3://nowhere/backups", "endpoint": f"http://127.0.0.1:{free_port()}", "allow_http": True,
        "access_key_id": "x", "secret_access_key": "y", "timeout": 3})
    acts = BackupActivities(settings)
    env = skipping_clock_env
    async with Worker(env.client, task_queue=task_queue, workflows=[BackupWorkflow],
                      activities=[acts.base_backup, acts.prune]):
        handle = await env.client.start_workflow(BackupWorkflow.run, BackupInput(), id=f"backup-{uuid.uuid4()}",
                                                 task_queue=task_queue, result_type=BackupReport)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    activity_failure = failed.value.cause
    assert "s3://nowhere/backups" in str(activity_failure.cause)
    scheduled = [e for e in (await handle.fetch_history()).events if e.HasField("activity_task_started_event_attributes")]
    assert scheduled and scheduled[-1].activity_task_started_event_attributes.attempt == 5


def test_prune_drops_backups_past_the_retention_but_keeps_the_newest_and_its_wal(backed_up, server_dir):
    pg, _ = backed_up
    store = open_store(StorageSettings(local_dir=server_dir / "store"))
    first = take_base_backup(pg.url(), store)
    second = take_base_backup(pg.url(), store)
    store.put_bytes(f"backups/wal/{first.start_segment}", b"old wal")
    store.put_bytes(f"backups/wal/{second.start_segment}", b"needed wal")
    assert first.start_segment < second.start_segment
    assert prune(store, 30, now=datetime.now(UTC) + timedelta(days=10)) == []
    deleted = prune(store, 30, now=datetime.now(UTC) + timedelta(days=31))
    assert f"backups/base/{first.label}/manifest.json" in deleted
    assert [b.label for b in list_base_backups(store)] == [second.label]
    assert [o.key for o in store.list("backups/wal/")] == [f"backups/wal/{second.start_segment}"]
    assert not [o for o in store.list(f"backups/base/{first.label}/")]
