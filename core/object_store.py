"""Stellar's object store: a local directory by default, S3-compatible in production (``obstore``).

One small surface — put/get a file or bytes, list a prefix, delete — over ``obstore``'s
``LocalStore`` and ``S3Store``, configured by a ``StorageSettings`` group (``core/settings.py``):
``settings.storage`` holds backups under ``backups/``, ``settings.image_store`` the frames under
``frames/`` (``core/frame_store.py``, docs/frames.md).

Every put is atomic, so a reader (or a process killed mid-upload) never leaves a partial object:
a local put writes a staging file beside the key and renames it; an S3 put is one request, or a
multipart upload that no reader sees before it completes.

Keys are ``/``-separated paths relative to the store's root (or the S3 bucket's prefix). Every
call is blocking; async callers run it in a thread. Any failure to reach the store raises
:class:`ObjectStoreError` after a short, bounded retry (``RETRY``): an unreachable store must fail
loudly, never hang for minutes or look like success.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import obstore
from obstore.store import LocalStore, S3Store

from core.settings import StorageSettings

#: obstore retries connection errors and 5xx answers itself; bounded so an unreachable store
#: fails within seconds and the caller's own retry (a Temporal activity's) takes over.
RETRY = {"max_retries": 2, "retry_timeout": timedelta(seconds=10),
         "backoff": {"init_backoff": timedelta(milliseconds=200), "max_backoff": timedelta(seconds=2), "base": 2}}


class ObjectStoreError(RuntimeError):
    """The store could not be reached, or it refused the operation (the message says which)."""


@dataclass(frozen=True)
class StoredObject:
    """One object: ``key`` (path in the store), ``size`` (bytes), ``last_modified`` (UTC)."""

    key: str
    size: int
    last_modified: datetime


class ObjectStore:
    """A configured store. ``description`` names it for messages (``s3://bucket/prefix`` or a path)."""

    def __init__(self, store: LocalStore | S3Store, description: str) -> None:
        self._store = store
        self.description = description

    def _fail(self, action: str, key: str, exc: Exception) -> ObjectStoreError:
        return ObjectStoreError(f"object store {self.description}: {action} {key!r} failed: {exc}")

    def put_file(self, key: str, path: Path) -> None:
        """Upload the file at ``path`` as ``key`` (atomic: readers never see a partial object)."""
        try:
            obstore.put(self._store, key, Path(path))
        except Exception as exc:  # noqa: BLE001 - obstore raises its own exception tree
            raise self._fail("put", key, exc) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            obstore.put(self._store, key, data)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("put", key, exc) from exc

    def get_bytes(self, key: str) -> bytes:
        """The object's content. Raises ObjectStoreError (also when ``key`` does not exist)."""
        try:
            return bytes(obstore.get(self._store, key).bytes())
        except Exception as exc:  # noqa: BLE001
            raise self._fail("get", key, exc) from exc

    def head(self, key: str) -> StoredObject | None:
        """The object's size and date, or None when ``key`` does not exist."""
        try:
            m = obstore.head(self._store, key)
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001
            raise self._fail("head", key, exc) from exc
        return StoredObject(m["path"], m["size"], m["last_modified"])

    def get_head_bytes(self, key: str, length: int) -> bytes:
        """The object's first ``length`` bytes (all of it when shorter). Raises ObjectStoreError."""
        try:
            return bytes(obstore.get_range(self._store, key, start=0, length=length))
        except Exception as exc:  # noqa: BLE001
            raise self._fail("get", key, exc) from exc

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object's content in chunks of about ``chunk_size`` bytes. Raises ObjectStoreError."""
        try:
            for chunk in obstore.get(self._store, key).stream(min_chunk_size=chunk_size):
                yield bytes(chunk)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("get", key, exc) from exc

    async def stream(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """As :meth:`iter_bytes`, for an event loop (an HTTP response streams it)."""
        try:
            result = await obstore.get_async(self._store, key)
            async for chunk in result.stream(min_chunk_size=chunk_size):
                yield bytes(chunk)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("get", key, exc) from exc

    def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path`` in chunks (large base backups do not pass through memory)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            result = obstore.get(self._store, key)
            with open(path, "wb") as fh:
                for chunk in result.stream(min_chunk_size=8 * 1024 * 1024):
                    fh.write(chunk)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("get", key, exc) from exc

    def list(self, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix`` (recursive), sorted by key."""
        out: list[StoredObject] = []
        try:
            for batch in obstore.list(self._store, prefix=prefix):
                out.extend(StoredObject(m["path"], m["size"], m["last_modified"]) for m in batch)
        except FileNotFoundError:
            return []  # a local store whose prefix directory does not exist yet
        except Exception as exc:  # noqa: BLE001
            raise self._fail("list", prefix, exc) from exc
        return sorted(out, key=lambda o: o.key)

    def delete(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            obstore.delete(self._store, keys)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("delete", keys[0], exc) from exc


def _local(directory: Path) -> ObjectStore:
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return ObjectStore(LocalStore(root, mkdir=True), str(root))


def open_store(cfg: StorageSettings) -> ObjectStore:
    """The store ``cfg`` describes: ``url`` ``s3://bucket[/prefix]`` (with ``endpoint``, keys,
    ``allow_http`` for a local S3-compatible server), ``file:///path`` (that directory, created),
    else the local directory ``local_dir`` (created). Raises ObjectStoreError for another URL."""
    if not cfg.url:
        return _local(cfg.local_dir)
    parsed = urlparse(cfg.url)
    if parsed.scheme == "file" and parsed.path:
        return _local(Path(parsed.path))
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ObjectStoreError(f"a store URL is s3://bucket[/prefix] or file:///path, not {cfg.url!r}")
    config: dict[str, str] = {"region": cfg.region}
    if cfg.endpoint:
        config["endpoint"] = cfg.endpoint
    if cfg.access_key_id.get_secret_value():
        config["access_key_id"] = cfg.access_key_id.get_secret_value()
        config["secret_access_key"] = cfg.secret_access_key.get_secret_value()
    client = {"allow_http": cfg.allow_http, "timeout": timedelta(seconds=cfg.timeout),
              "connect_timeout": timedelta(seconds=min(cfg.timeout, 5.0))}
    store = S3Store(parsed.netloc, prefix=parsed.path.strip("/") or None, config=config,
                    client_options=client, retry_config=RETRY)
    return ObjectStore(store, cfg.url)
