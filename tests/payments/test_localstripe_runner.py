"""``core.localstripe``: starts on its port and answers the API, fails clearly when the port is
taken, keeps state only in its own file, and registers our webhook endpoint."""

from __future__ import annotations

import socket

import pytest
import stripe

from core.localstripe import LocalStripe, LocalStripeError
from tests.conftest import free_port


def test_a_taken_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LocalStripeError, match=f"port {port} for localstripe is already taken.*LOCALSTRIPE_PORT"):
            LocalStripe(port).start()


async def test_state_survives_a_restart_in_its_own_file(tmp_path):
    state = tmp_path / "localstripe.pickle"
    port = free_port()
    with LocalStripe(port, state_file=state, log_path=tmp_path / "ls.log") as ls:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": ls.url}, http_client=stripe.HTTPXClient())
        created = await client.v1.customers.create_async({"email": "kept@example.com"})
        ls.configure_webhook("http://127.0.0.1:9/hook", "whsec_x")
    assert state.exists()
    with LocalStripe(port, state_file=state, log_path=tmp_path / "ls.log") as ls:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": ls.url}, http_client=stripe.HTTPXClient())
        assert (await client.v1.customers.retrieve_async(created.id)).email == "kept@example.com"
    with LocalStripe(port, log_path=tmp_path / "ls.log") as ls:  # no state file: starts empty
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": ls.url}, http_client=stripe.HTTPXClient())
        with pytest.raises(stripe.InvalidRequestError):
            await client.v1.customers.retrieve_async(created.id)
