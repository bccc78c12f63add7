"""Voyager clients built from ``VoyagerSettings``: one connection, the pool, the event stream.

``voyager/`` takes plain arguments and never reads ``core.settings``; the worker, the CLI, the
activities, the benchmarks and the tests turn settings into those arguments here, once
(docs/voyager-protocol.md §2, §2.5, §4).
"""

from __future__ import annotations

from typing import Any

from core.settings import VoyagerSettings
from voyager.client import VoyagerConnection
from voyager.events import EventStream
from voyager.pool import VoyagerPool


def connection_from_settings(settings: VoyagerSettings, **overrides: Any) -> VoyagerConnection:
    """An unconnected ``VoyagerConnection`` to ``settings``' host and port, with its credentials,
    MAC key and words and timeouts (seconds); ``overrides`` are ``VoyagerConnection`` keyword
    arguments that win (e.g. ``manager_mode=False``)."""
    opts: dict[str, Any] = dict(
        username=settings.username or None,
        password=settings.password.get_secret_value(),
        mac_key=settings.mac_key.get_secret_value(),
        mac_words=settings.mac_word_list(),
        connect_timeout=settings.connect_timeout,
        command_timeout=settings.command_timeout,
    )
    opts.update(overrides)
    return VoyagerConnection(settings.effective_host(), settings.port, **opts)


def pool_from_settings(settings: VoyagerSettings, size: int | None = None, **kwargs: Any) -> VoyagerPool:
    """A ``VoyagerPool`` (not started) of ``size`` (default ``settings.pool_size``) manager-mode
    connections; ``acquire_timeout`` defaults to ``settings.pool_acquire_timeout``; ``kwargs``:
    further ``VoyagerPool`` keyword arguments (``health_interval``, ``backoff_base``, …)."""
    kwargs.setdefault("acquire_timeout", settings.pool_acquire_timeout)
    return VoyagerPool(lambda: connection_from_settings(settings), size or settings.pool_size, **kwargs)


def event_stream_from_settings(settings: VoyagerSettings, **kwargs: Any) -> EventStream:
    """An ``EventStream`` (not started) on a dashboard-mode connection without manager mode;
    ``kwargs``: ``EventStream`` keyword arguments (``names``, ``queue_size``, back-off)."""
    return EventStream(lambda: connection_from_settings(settings, manager_mode=False, dashboard=True), **kwargs)
