"""Which peers a socket is really talking to, read from its ZeroMQ monitor.

A SUB that has just called ``connect`` misses whatever its PUB sends before
the connection's handshake finishes (the "slow joiner"). The node graph needs
to know when that window is over: a runner is *ready* only once it hears every
node it depends on, and the command node counts on hearing every runner.
Rather than a beacon on the outbox (which upstream noob could not parse), each
such socket gets a monitor (an inproc PAIR in the same SocketManager) and
:class:`Links` keeps the set of endpoints whose handshake succeeded, and when
the last link was lost. ``inproc://`` endpoints are linked as soon as they are
connected: they have no handshake.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import zmq as _zmq
from zmq.utils.monitor import parse_monitor_message

log = logging.getLogger("nodegraph.links")

_EVENTS = _zmq.EVENT_HANDSHAKE_SUCCEEDED | _zmq.EVENT_DISCONNECTED
SCHEMES = ("tcp://", "ipc://", "inproc://")


def valid_endpoint(address: Any) -> bool:
    """Whether ``address`` is an endpoint a peer may ask us to connect to."""
    return type(address) is str and address.startswith(SCHEMES) and 0 < len(address) < 1024


class Links:
    """Watch the handshakes of the named socket of ``manager`` (create it first, connect through here).

    Attributes
    ----------
    up : set of str
        endpoints whose connection is established
    lost_at : float or None
        ``time.monotonic()`` when the last link went down with none back since
    """

    def __init__(self, manager: Any, name: str) -> None:
        self.manager = manager
        self.name = name
        self.monitor_name = f"{name}-monitor"
        self.up: set[str] = set()
        self.connected: list[str] = []
        self.lost_at: float | None = None
        address = f"inproc://monitor-{name}-{uuid.uuid4().hex}"
        manager.sockets[name].monitor(address, _EVENTS)
        self.monitor: Any = manager.ensure_and_connect(
            self.monitor_name, manager.zmq.PAIR, address, _zmq.POLLIN
        )

    def connect(self, address: str, polling_mechanism: int = _zmq.POLLIN) -> None:
        """Connect the watched socket to ``address``."""
        self.manager.connect(self.name, address, polling_mechanism)
        self.connected.append(address)
        if address.startswith("inproc://"):
            self.up.add(address)

    def linked(self, addresses: Any) -> bool:
        """Whether every one of ``addresses`` is linked."""
        return all(address in self.up for address in addresses)

    def poll_monitor(self, polled: bool) -> None:
        """Whether the manager's ``engage`` polls the monitor (else call :meth:`drain` now and then).

        Every socket polled costs a system call or two on each poll; a link that
        matters only now and then need not wake the hot loop.
        """
        if self.monitor is not None:
            self.manager.register_socket(self.monitor, _zmq.POLLIN if polled else 0)

    def stop_watching(self) -> None:
        """Close the monitor (one socket less to poll); :attr:`up` stays as it was."""
        if self.monitor is None:
            return
        socket = self.manager.sockets.get(self.name)
        if socket is not None:
            try:
                socket.disable_monitor()
            except _zmq.ZMQError:
                pass
        self.manager.close(self.monitor_name, linger=0)
        self.monitor = None

    def drain(self) -> None:
        """Read every pending monitor event."""
        while self.monitor is not None:
            try:
                frames = self.monitor.recv_multipart(_zmq.NOBLOCK)
            except _zmq.Again:
                return
            try:
                event = parse_monitor_message(frames)
            except Exception:  # a monitor speaks only libzmq's format; be safe anyway
                continue
            endpoint = event["endpoint"].decode("utf-8", "replace")
            if event["event"] == _zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.up.add(endpoint)
                self.lost_at = None
            elif event["event"] == _zmq.EVENT_DISCONNECTED:
                self.up.discard(endpoint)
                if not self.up and self.lost_at is None:
                    self.lost_at = time.monotonic()

    def close(self) -> None:
        """Close the monitor and the watched socket (linger 0)."""
        self.stop_watching()
        self.manager.close(self.name, linger=0)
