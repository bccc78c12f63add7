"""``stellar voyager-sim --help`` tells how clients connect (raw TCP and WebSocket on one port)."""

from __future__ import annotations

from typer.testing import CliRunner

from stellar_cli.main import app


def test_help_documents_websocket_and_raw_tcp_on_the_same_port():
    result = CliRunner().invoke(app, ["voyager-sim", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "ws://HOST:PORT/" in text and "raw TCP" in text and "--pixel-scale" in text
