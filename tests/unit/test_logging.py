"""core.logging: records go to ``sys.stderr`` as it is when they are emitted."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from core.logging import configure_logging


@pytest.fixture
def logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def test_logging_configured_under_a_swapped_stderr_outlives_the_swap(logging_restored, capsys):
    """A CLI run under a test runner configures logging while ``sys.stderr`` is the runner's buffer,
    closed when the run ends: later records still reach stderr, with no "Logging error"."""
    with contextlib.redirect_stderr(io.StringIO()) as swapped:
        configure_logging("INFO", json=True)
        logging.getLogger("stellar.test").warning("during the run")
    assert "during the run" in swapped.getvalue()
    swapped.close()

    logging.getLogger("stellar.test").warning("after the run")
    err = capsys.readouterr().err
    assert "after the run" in err
    assert "Logging error" not in err
