"""The embedded stack's SMTP sink (``stellar dev``): a real ``python -m mail.sink`` process that
keeps what it receives as files where the stack's summary says."""

from __future__ import annotations

import shutil
import smtplib
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from core.settings import load_settings
from core.stack import Stack
from tests.conftest import free_port


def test_the_stack_starts_a_sink_and_points_the_worker_and_the_summary_at_it():
    state = Path(tempfile.mkdtemp(prefix="stellar-devsink-"))
    stack = Stack(load_settings(env="dev", state_dir=state, mail={"sink_port": free_port()}), api=False, worker=False)
    try:
        stack._start_mail_sink()  # only this component: the rest of the stack is not needed here
        env = stack.env
        assert env["STELLAR_MAIL__HOST"] == "127.0.0.1" and env["STELLAR_MAIL__STARTTLS"] == "false"
        where = stack.mail_dir() / "new"
        assert str(where) in stack.summary()["Mail"]
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "noreply@stellar.invalid", "a@example.com", "hello"
        msg.set_content("body")
        with smtplib.SMTP(env["STELLAR_MAIL__HOST"], int(env["STELLAR_MAIL__PORT"]), timeout=10) as smtp:
            smtp.send_message(msg)
        deadline = time.monotonic() + 10
        while not list(where.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        [stored] = list(where.glob("*"))
        assert b"Subject: hello" in stored.read_bytes()
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


def test_a_configured_smtp_host_starts_no_sink():
    state = Path(tempfile.mkdtemp(prefix="stellar-devsink-"))
    try:
        stack = Stack(load_settings(env="dev", state_dir=state, mail={"host": "smtp.example.org"}), api=False,
                      worker=False)
        stack._start_mail_sink()
        assert stack.children_alive() == {} and "STELLAR_MAIL__HOST" not in stack.env
        assert stack.summary()["Mail"] == "SMTP smtp.example.org:587"
    finally:
        shutil.rmtree(state, ignore_errors=True)
