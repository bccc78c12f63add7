"""Frames in the image store (docs/frames.md): deterministic keys, SHA-256, idempotent uploads.

A frame's FITS and JPG live at ``frames/<order_id>/<shot_done_guid>.fits`` and ``.jpg`` in the
store ``settings.image_store`` describes (a local directory, or S3-compatible). The ingest beside
Voyager uploads them (:func:`store_frame_file`); the API and retention open the same store from
their own settings (:func:`frame_store`), so no directory is shared between the hosts.

Blocking calls (obstore's sync API); async callers run them in a thread.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.object_store import ObjectStore, open_store
from core.settings import ImageStoreSettings, Settings

FRAMES_PREFIX = "frames"
_CHUNK = 1024 * 1024


def frame_key(order_id: int, shot_done_guid: str, suffix: str) -> str:
    """``frames/<order_id>/<shot_done_guid>.<suffix>`` (``suffix``: ``fits`` or ``jpg``)."""
    return f"{FRAMES_PREFIX}/{order_id}/{shot_done_guid}.{suffix}"


@dataclass(frozen=True)
class StoredFile:
    """A frame file in the store: ``key``, ``sha256`` (64 hex digits of the content), ``size``
    (bytes), ``uploaded`` (False when the same content was already there)."""

    key: str
    sha256: str
    size: int
    uploaded: bool


def sha256_of(source: Path | bytes) -> tuple[str, int]:
    """Hex SHA-256 and size (bytes) of a file (read in chunks) or of bytes."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest(), len(source)
    digest, size = hashlib.sha256(), 0
    with open(source, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def stored_sha256(store: ObjectStore, key: str) -> str:
    """Hex SHA-256 of the object ``key`` as the store holds it (read through, in chunks)."""
    digest = hashlib.sha256()
    for chunk in store.iter_bytes(key):
        digest.update(chunk)
    return digest.hexdigest()


def store_frame_file(store: ObjectStore, key: str, source: Path | bytes) -> StoredFile:
    """Upload ``source`` (a file or bytes) as ``key`` unless the store already holds that content.

    Idempotent for a retried ingest: the object is looked up first (``head``); same size and same
    SHA-256 → nothing is uploaded. A different object under the key (never a partial one: puts are
    atomic) is replaced. Raises ObjectStoreError (store unreachable or refusing), OSError
    (``source`` unreadable)."""
    sha, size = sha256_of(source)
    existing = store.head(key)
    if existing is not None and existing.size == size and stored_sha256(store, key) == sha:
        return StoredFile(key, sha, size, uploaded=False)
    if isinstance(source, bytes):
        store.put_bytes(key, source)
    else:
        store.put_file(key, source)
    return StoredFile(key, sha, size, uploaded=True)


@lru_cache(maxsize=8)
def _open(cfg_json: str) -> ObjectStore:
    return open_store(ImageStoreSettings.model_validate_json(cfg_json))


def frame_store(settings: Settings) -> ObjectStore:
    """The image store of ``settings`` (opened once per configuration and process)."""
    cfg = settings.image_store
    # SecretStr serialises masked: dump the secrets in clear so two key pairs never share a store.
    key = cfg.model_dump(mode="json") | {"access_key_id": cfg.access_key_id.get_secret_value(),
                                         "secret_access_key": cfg.secret_access_key.get_secret_value()}
    return _open(json.dumps(key, sort_keys=True))
