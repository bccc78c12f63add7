"""The embedded stack's SMTP sink: an aiosmtpd server that keeps every message in a Maildir.

    python -m mail.sink --port 8025 --dir .stellar/mail

Read what was sent with any mail reader that opens a Maildir (``mutt -f .stellar/mail``), or the
files themselves: one RFC 5322 message per file under ``new/``. Nothing is relayed anywhere.
"""

from __future__ import annotations

import argparse
import mailbox
import signal
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def prepare_maildir(directory: Path) -> None:
    """Create ``directory`` as a Maildir (``Maildir(create=True)`` skips the subfolders when the
    directory already exists)."""
    for sub in ("tmp", "new", "cur"):
        (Path(directory) / sub).mkdir(parents=True, exist_ok=True)


def start_sink(directory: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    """Start the sink (its own thread) storing into the Maildir ``directory``; ``.stop()`` ends it."""
    prepare_maildir(directory)
    controller = Controller(Mailbox(str(directory)), hostname=host, port=port)
    controller.start()
    return controller


def read_sink(directory: Path) -> list[EmailMessage]:
    """Every message the sink holds, headers decoded, oldest first (Maildir keys begin with the
    delivery time)."""
    box = mailbox.Maildir(str(directory), create=False)
    return [message_from_bytes(box.get_bytes(k), policy=policy.default) for k in sorted(box.keys())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    controller = start_sink(args.dir, args.host, args.port)
    print(f"SMTP sink on {args.host}:{args.port}, messages in {args.dir.resolve()}/new", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
