"""The green flavour: park the greenlet on the socket's descriptor and a timer, and let the others run.

gevent is imported here only, when a manager is made for ``zmq.green``. The
turn-taking is :mod:`agentzero.flavours.cooperative`'s; this module supplies
gevent's primitives: a ``Waiter`` to park on, the hub's ``io`` watcher and
timers, and ``run_callback``. A caller's own ``gevent.Timeout`` passes
through untouched: the slices use a private timer.
"""

from __future__ import annotations

from typing import Any, Callable

from agentzero.flavours.base import drive
from agentzero.flavours.cooperative import Cooperative
from agentzero.manager.table import SocketRecord
from agentzero.manager.turns import SLICE_ENDED


class GreenFlavour(Cooperative):
    """Park the greenlet; see :mod:`agentzero.flavours.cooperative`."""

    name = "green"

    def __init__(self) -> None:
        from gevent.hub import Waiter, get_hub

        self._hub = get_hub()
        self._get_hub = get_hub
        self._loop = self._hub.loop
        self._Waiter = Waiter

    def wait(self, record: SocketRecord, mechanism: int, seconds: float, slice_ms: float) -> bool:
        """Wait up to ``seconds`` for the socket to be ready for ``mechanism``; other greenlets run."""
        return bool(drive(self.wait_steps(record, mechanism, seconds, slice_ms)))

    def poll(self, items: list[tuple[SocketRecord, int]], timeout_ms: float) -> list[tuple[Any, int]]:
        """Wait up to ``timeout_ms`` for any of ``(record, mechanism)``; return ``(socket, events)`` ready."""
        ready: list[tuple[Any, int]] = drive(self.poll_steps(items, timeout_ms))
        return ready

    def park(self, handle: Any, seconds: float) -> Any:
        timer = self._loop.timer(seconds)
        timer.start(handle.switch, SLICE_ENDED)
        try:
            return handle.get()
        finally:
            timer.close()

    def nap(self, seconds: float) -> None:
        import gevent

        gevent.sleep(seconds)

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` while the other greenlets run (a send that a ready socket refused)."""
        self.nap(seconds)

    def wake_from_threads(self, callback: Callable[[], None]) -> Any:
        """A started, unreferenced ``async`` watcher of this hub: its ``send()`` runs ``callback`` here."""
        watcher = self._hub.loop.async_()
        watcher.start(callback)
        watcher.ref = False  # it must not keep the hub's loop alive
        return watcher

    # -- gevent's primitives ----------------------------------------------------------------------

    def _new_handle(self) -> Any:
        return self._Waiter(self._hub)

    def _fire(self, handle: Any, outcome: str) -> None:
        # a late switch of a Waiter nobody waits on only stores the value: harmless
        self._loop.run_callback(handle.switch, outcome)

    def _watch(self, record: SocketRecord) -> None:
        if self._get_hub() is not self._hub:
            raise RuntimeError(
                "a green SocketManager waits only in the thread that created it "
                "(its gevent hub); use one manager per thread"
            )
        watcher = record.watcher
        if watcher is None:
            watcher = record.watcher = self._loop.io(record.fd, 1)
        if not watcher.active:
            watcher.start(self._on_descriptor, record)

    def _unwatch(self, record: SocketRecord) -> None:
        record.watcher.stop()

    def _drop_watch(self, record: SocketRecord) -> None:
        # before libzmq frees the descriptor: an active watcher on a freed (maybe reused)
        # descriptor aborts libev
        watcher, record.watcher = record.watcher, None
        watcher.stop()
        watcher.close()

    def _soon(self, callback: Callable[[SocketRecord], None], record: SocketRecord) -> None:
        self._loop.run_callback(callback, record)
