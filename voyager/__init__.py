"""Voyager Application Server client (and, in ``voyager.simulator``, the embedded simulator).

Layers (the wire contract is docs/voyager-protocol.md): ``protocol`` (sans-IO framing, messages,
MAC, and the per-connection state objects ``ClientProtocol`` / ``ServerProtocol``), ``wire`` (the RoboTarget [S]/[C] name mapping), ``client`` (one connection), ``pool``
(N authenticated connections), ``robotarget`` (typed RoboTarget commands), ``events`` (dashboard
event stream). Errors live in ``errors``. Everything here takes plain arguments;
``core/voyager_clients.py`` builds the client side from settings. Import the submodule you need; nothing heavy is imported
here so the simulator can share ``protocol``/``wire`` cheaply.
"""
