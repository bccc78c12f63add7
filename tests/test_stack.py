"""`stellar dev`: one stack per state directory, clear errors for taken ports and bad settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from core.processes import StackError, require_free_port
from core.settings import load_settings
from core.stack import Stack


def test_a_second_stack_on_the_same_state_dir_fails_fast(tmp_path):
    settings = load_settings(state_dir=tmp_path)
    first, second = Stack(settings), Stack(settings)
    first._take_lock()
    try:
        with pytest.raises(StackError, match=f"already running on {tmp_path}.*pid {os.getpid()}"):
            second._take_lock()
    finally:
        first.stop()
    second._take_lock()  # released with the first stack
    second.stop()


def test_a_taken_port_is_named_with_its_variable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} for the API is already taken.*STELLAR_API__PORT"):
            require_free_port(port, "the API", "STELLAR_API__PORT")


def test_bad_setting_stops_the_cli_with_the_variable_name_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_")}
    env["STELLAR_DATABASE__URL"] = "mysql://root@db/stellar"
    r = subprocess.run([sys.executable, "-m", "stellar_cli", "dev"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "invalid configuration" in r.stderr and "STELLAR_DATABASE__URL" in r.stderr
    assert "Traceback" not in r.stderr
