"""Which peers a socket is really talking to, read from the SocketManager's ``socket_events``.

A SUB that has just called ``connect`` misses whatever its PUB sends before
the connection's handshake finishes (the "slow joiner"). The node graph needs
to know when that window is over: a runner is *ready* only once it hears every
node it depends on, and the command node counts on hearing every runner.
Rather than a beacon on the outbox (which upstream noob could not parse),
:class:`Links` reads the socket's events (``sockets.socket_events(name)``) and
keeps the set of endpoints whose handshake succeeded, and when the last link
was lost. ``inproc://`` endpoints are linked as soon as they are connected:
they have no handshake.
"""

from __future__ import annotations

import time
from typing import Any

import zmq as _zmq

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
    watching : bool
        whether :meth:`drain` still reads the events (see :meth:`stop_watching`)
    """

    def __init__(self, manager: Any, name: str) -> None:
        self.manager = manager
        self.name = name
        self.up: set[str] = set()
        self.connected: list[str] = []
        self.lost_at: float | None = None
        self.watching = True

    def connect(self, address: str, polling_mechanism: int = _zmq.POLLIN) -> None:
        """Connect the watched socket to ``address``."""
        self.manager.connect(self.name, address, polling_mechanism)
        self.connected.append(address)
        if address.startswith("inproc://"):
            self.up.add(address)

    def linked(self, addresses: Any) -> bool:
        """Whether every one of ``addresses`` is linked."""
        return all(address in self.up for address in addresses)

    def stop_watching(self) -> None:
        """Read no more events (:attr:`up` stays as it was): the links no longer matter."""
        self.watching = False

    def drain(self) -> None:
        """Read every event the socket saw since the last call."""
        if not self.watching or self.name not in self.manager.sockets:
            return
        if all(address.startswith("inproc://") for address in self.connected):
            return  # linked at connect, and libzmq reports nothing over inproc
        for kind, endpoint, _ in self.manager.socket_events(self.name):
            if kind == "handshake_succeeded":
                self.up.add(endpoint)
                self.lost_at = None
            elif kind == "disconnected":
                self.up.discard(endpoint)
                if not self.up and self.lost_at is None:
                    self.lost_at = time.monotonic()

    def close(self) -> None:
        """Close the watched socket (linger 0)."""
        self.watching = False
        self.manager.close(self.name, linger=0)
