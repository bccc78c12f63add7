"""localstripe (a Stripe API fake from the ``localstripe`` wheel) as a child process, for
``stellar dev`` and the payment tests.

Differences from ``.venv/bin/localstripe --port N``: it listens on 127.0.0.1 only (IPv4), and it
keeps its state in ``state_file`` (default: none, it starts empty) instead of the shared
``/tmp/localstripe.pickle`` every localstripe on the machine would otherwise read and overwrite.

Webhooks: :meth:`LocalStripe.configure_webhook` registers our endpoint and secret with
localstripe's ``POST /_config/webhooks/<name>``; localstripe then POSTs each event there about a
second after it happens, signed the Stripe way (``Stripe-Signature: t=…,v1=…``).

Use::

    with LocalStripe(port) as ls:
        ls.configure_webhook("http://127.0.0.1:8000/api/stripe/webhook", "whsec_…")
        ... settings.stripe.api_base = ls.url ...

Run directly (what :class:`LocalStripe` spawns): ``python -m core.localstripe --port 8420
[--host 127.0.0.1] [--state-file .stellar/localstripe.pickle]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from core.processes import StackError, port_in_use, stop_process_group


class LocalStripeError(StackError):
    """localstripe could not start, or refused a configuration call; the message says why."""


class LocalStripe:
    """A localstripe child process on ``host:port``. ``log_path``: its output (default: a temp file)."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", state_file: Path | None = None,
                 log_path: Path | None = None, api_key: str = "sk_test_stellar_local") -> None:
        self.port = port
        self.host = host
        self.state_file = state_file
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"localstripe-{port}.log"
        self.api_key = api_key
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL for ``settings.stripe.api_base``, e.g. ``http://127.0.0.1:8420``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "LocalStripe":
        """Start and wait until it answers the API. Raises LocalStripeError (port taken, exited,
        not ready within ``timeout`` seconds)."""
        if port_in_use(self.port, self.host):
            raise LocalStripeError(
                f"port {self.port} for localstripe is already taken on {self.host} "
                "(STELLAR_STRIPE__LOCALSTRIPE_PORT); stop what uses it or configure another port")
        argv = [sys.executable, "-m", "core.localstripe", "--host", self.host, "--port", str(self.port)]
        if self.state_file:
            argv += ["--state-file", str(self.state_file)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         cwd=Path(__file__).resolve().parent.parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalStripeError(f"localstripe exited with code {self.proc.returncode} before listening on "
                                       f"{self.port}:\n{self._tail()}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise LocalStripeError(f"localstripe did not answer on {self.url} within {timeout:.0f}s:\n{self._tail()}")

    def _ready(self) -> bool:
        req = urllib.request.Request(f"{self.url}/v1/balance", headers={"Authorization": f"Bearer {self.api_key}"})
        try:
            with urllib.request.urlopen(req, timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def configure_webhook(self, url: str, secret: str, name: str = "stellar", events: list[str] | None = None) -> None:
        """See :func:`configure_webhook`."""
        configure_webhook(self.url, url, secret, name, events)

    def stop(self, timeout: float = 10.0) -> None:
        stop_process_group(self.proc, timeout, signal.SIGTERM)
        self.proc = None

    def __enter__(self) -> "LocalStripe":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def configure_webhook(localstripe_url: str, url: str, secret: str, name: str = "stellar",
                      events: list[str] | None = None) -> None:
    """Make the localstripe at ``localstripe_url`` POST signed events to ``url`` (our
    ``/api/stripe/webhook``), signed with ``secret`` (``settings.stripe.webhook_secret``).
    ``events``: only these types (default: all). Registering ``name`` again replaces it.
    Raises LocalStripeError."""
    body: dict[str, object] = {"url": url, "secret": secret}
    if events is not None:
        body["events"] = events
    req = urllib.request.Request(f"{localstripe_url.rstrip('/')}/_config/webhooks/{name}",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            if resp.status != 200:
                raise LocalStripeError(f"localstripe refused the webhook configuration: HTTP {resp.status}")
    except (urllib.error.URLError, OSError) as exc:
        raise LocalStripeError(f"localstripe at {localstripe_url} refused the webhook configuration: {exc}") from None


def _use_state_file(path: Path | None) -> None:
    """Point localstripe's store at ``path`` (None: memory only) instead of /tmp/localstripe.pickle."""
    from localstripe import resources

    def load(self) -> None:
        if path and path.exists():
            with open(path, "rb") as f:
                old = pickle.load(f)
            self.clear()
            self.update(old)

    def dump(self) -> None:
        if path is None:
            return
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(dict(self), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m core.localstripe", description="localstripe on one address")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state-file", type=Path, default=None, help="keep the store here (default: memory only)")
    args = parser.parse_args(argv)
    if args.state_file:
        args.state_file.parent.mkdir(parents=True, exist_ok=True)
    _use_state_file(args.state_file)

    import logging
    import socket

    from aiohttp import web
    from localstripe.resources import store
    from localstripe.server import app

    store.try_load_from_disk()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    logger = logging.getLogger("aiohttp.access")
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler())
    web.run_app(app, sock=sock, access_log=logger, print=lambda *_: None)


if __name__ == "__main__":
    main()
