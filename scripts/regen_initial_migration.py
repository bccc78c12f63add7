"""Regenerate migrations/versions/0001_initial.py from models/db.py (pre-release only).

Until the first deployment the schema lives in one initial migration; after it, add new revisions
with `alembic revision --autogenerate` instead. Starts a throwaway embedded PostgreSQL.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from alembic import command

from core.embedded_postgres import EmbeddedPostgres, port_is_free
from core.migrate import ROOT, alembic_config

NOTIFY_SQL = '''
    op.execute("""
        CREATE OR REPLACE FUNCTION notify_order_event() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('order_events', NEW.order_id::text || ':' || NEW.id::text);
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql;
    """)
    op.execute("""
        CREATE TRIGGER order_event_notify AFTER INSERT ON order_event
        FOR EACH ROW EXECUTE FUNCTION notify_order_event();
    """)
'''


def main() -> None:
    target = ROOT / "migrations" / "versions" / "0001_initial.py"
    target.unlink(missing_ok=True)
    port = next(p for p in range(56100, 56200) if port_is_free(p))
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp), port)
        pg.start()
        try:
            cfg = alembic_config(pg.url())
            command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
        finally:
            pg.stop()
    [generated] = (ROOT / "migrations" / "versions").glob("0001_*.py")
    text = generated.read_text()
    text = text.replace("    # ### end Alembic commands ###\n", "    # ### end Alembic commands ###\n" + NOTIFY_SQL, 1)
    text = re.sub(r"(def downgrade\(\) -> None:\n)", r"\1    op.execute('DROP TRIGGER IF EXISTS order_event_notify ON order_event')\n    op.execute('DROP FUNCTION IF EXISTS notify_order_event()')\n", text)
    generated.unlink()
    target.write_text(text)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
