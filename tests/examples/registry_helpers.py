"""Factories the registry tests share: registries that close at teardown, and hostile DEALERs."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from agentzero.zero import context as green_context
from agentzero.zero import zmq
from examples.registry.registry import Registry


def registries(token: str, **defaults: Any) -> Iterator[Callable[..., Registry]]:
    """Yield ``make(**options)``, a registry that accepts ``token`` (``defaults`` unless overridden).

    Meant for a fixture: ``yield from registries(TOKEN, heartbeat_timeout=30)``;
    every registry made is closed when the fixture ends.
    """
    made: list[Registry] = []

    def make(**options: Any) -> Registry:
        made.append(Registry({token}, **{**defaults, **options}))
        return made[-1]

    yield make
    for instance in made:
        instance.close()


def dealers() -> Iterator[Callable[..., Any]]:
    """Yield ``make(address, routing_id=None)``, a green DEALER connected to ``address`` (linger 0).

    Meant for a fixture; every DEALER made is closed when the fixture ends.
    """
    made: list[Any] = []

    def make(address: str, routing_id: bytes | None = None) -> Any:
        socket = green_context.socket(zmq.DEALER)
        socket.linger = 0
        if routing_id is not None:
            socket.setsockopt(zmq.ROUTING_ID, routing_id)
        socket.connect(address)
        made.append(socket)
        return socket

    yield make
    for socket in made:
        socket.close(linger=0)
