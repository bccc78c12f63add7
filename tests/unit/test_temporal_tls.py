"""``core.temporal.tls_config``: mutual TLS to a remote Temporal from ``STELLAR_TEMPORAL__TLS_*``
(docs/network.md §3); plain TCP when none is set."""

from __future__ import annotations

from temporalio.client import TLSConfig

from core.settings import load_settings
from core.temporal import tls_config


def test_no_tls_setting_means_plain_tcp():
    assert tls_config(load_settings(temporal={"address": "temporal.example.com:7233"})) is False


def test_client_certificate_key_and_ca_are_read_from_their_files(tmp_path):
    for name in ("site.pem", "site.key", "ca.pem"):
        (tmp_path / name).write_bytes(f"-----{name}-----".encode())
    settings = load_settings(temporal={
        "address": "temporal.example.com:7233", "tls_client_cert": tmp_path / "site.pem",
        "tls_client_key": tmp_path / "site.key", "tls_server_ca": tmp_path / "ca.pem",
        "tls_server_name": "temporal.internal"})
    tls = tls_config(settings)
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert, tls.domain) == (
        b"-----site.pem-----", b"-----site.key-----", b"-----ca.pem-----", "temporal.internal")


def test_a_ca_alone_turns_tls_on_with_the_system_client_identity(tmp_path):
    (tmp_path / "ca.pem").write_bytes(b"CA")
    tls = tls_config(load_settings(temporal={"tls_server_ca": tmp_path / "ca.pem"}))
    assert isinstance(tls, TLSConfig) and tls.client_cert is None and tls.server_root_ca_cert == b"CA"
