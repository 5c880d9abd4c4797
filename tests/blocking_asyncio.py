"""The asyncio manager behind the sync manager's interface, so the shared scenarios run under asyncio too.

Every coroutine of :class:`agentzero.asyncio.SocketManager` is run to its end
in the adapter's own event loop; ``subscribe`` becomes a plain generator.
Plain calls and attributes go straight to the manager. Nothing is faked: the
sockets, waits and errors are the asyncio manager's own.
"""

from __future__ import annotations

import asyncio
import inspect
import types
from typing import Any, Iterator

import zmq
import zmq.asyncio

from agentzero.asyncio import SocketManager as AsyncioSocketManager

# the module-like value of the ``zmq_module`` fixture: zmq's constants, zmq.asyncio's classes
ASYNCIO_FLAVOUR = types.SimpleNamespace(
    **{
        **{name: getattr(zmq, name) for name in dir(zmq) if not name.startswith("_")},
        "Context": zmq.asyncio.Context,
        "Socket": zmq.asyncio.Socket,
        "Poller": zmq.asyncio.Poller,
        "__name__": "zmq.asyncio",
    }
)

_OWN = frozenset(("_manager", "_loop"))


class BlockingAsyncioManager:
    """Run an :class:`agentzero.asyncio.SocketManager` as if it were the sync one."""

    def __init__(self, manager: AsyncioSocketManager) -> None:
        object.__setattr__(self, "_manager", manager)
        object.__setattr__(self, "_loop", asyncio.new_event_loop())

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._manager, name)
        if name == "zmq" and attribute is zmq.asyncio:
            # the fixture's zmq_module stands in for zmq.asyncio, which has no constants of its own
            return ASYNCIO_FLAVOUR
        if name == "subscribe":
            return self._subscribe
        if inspect.iscoroutinefunction(attribute):
            loop = self._loop

            def blocking(*args: Any, **kwargs: Any) -> Any:
                return loop.run_until_complete(attribute(*args, **kwargs))

            return blocking
        return attribute

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._manager, name, value)

    def __repr__(self) -> str:
        return repr(self._manager)

    def __enter__(self) -> BlockingAsyncioManager:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._manager.close_all()

    def _subscribe(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        events = self._manager.subscribe(*args, **kwargs).__aiter__()
        loop = self._loop

        def generator() -> Iterator[Any]:
            while True:
                try:
                    yield loop.run_until_complete(events.__anext__())
                except StopAsyncIteration:
                    return

        return generator()

    def shut(self) -> None:
        """Close every socket, then the event loop."""
        try:
            self._manager.close_all(linger=0)
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
