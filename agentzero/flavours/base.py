"""What every flavour provides, and :func:`drive`, which runs the steps of a call that must wait.

A flavour is how one manager waits, chosen once when the manager is built
(:func:`agentzero.flavours.choose`): plain ``zmq`` blocks the thread, green
parks the greenlet, asyncio awaits. It is the only object that knows which
model is in use; the core (:mod:`agentzero.manager`) asks it to wait and
tells it of its operations, nothing more.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any, Callable, Generator

from agentzero.manager.table import SocketRecord


class Flavour:
    """How one manager waits: the plain and green ``wait`` and ``poll`` block; asyncio's are coroutines.

    Attributes
    ----------
    name : str
        ``'plain'``, ``'green'`` or ``'asyncio'``
    rebind_grace : float
        how long, in seconds, ``bind`` may wait for an address this manager
        has just released (libzmq frees a closed listener in its I/O thread)
    """

    name = "plain"
    rebind_grace = 1.0

    def after_operation(self, record: SocketRecord) -> None:
        """Called after an operation on a socket that has waiters: wake those that may go on."""

    def closing(self, record: SocketRecord) -> None:
        """Called before the manager closes the socket: wake every waiter, release watchers."""

    def nap(self, seconds: float) -> None:
        """Sleep briefly without waiting in the event loop's sense (``bind``'s rebind grace)."""
        raise NotImplementedError

    def resolve_soon(self, resolve: Callable[[], Any], done: Callable[[Any], None]) -> bool:
        """Run ``resolve`` in a worker thread, then ``done(future)`` in this flavour's loop.

        Returns ``False`` (and runs nothing) when the caller may as well
        resolve at once: the plain and green flavours, and asyncio outside a
        running loop.
        """
        return False

    def wake_from_threads(self, callback: Callable[[], None]) -> Any:
        """A handle whose ``send()`` runs ``callback`` in this flavour's loop from any thread, or ``None``."""
        return None


def driving(steps: Any, awaiting: bool) -> Generator[Any, Any, Any]:
    """Run the ``steps`` of a call that must wait to their end: the one loop of :func:`drive` and ``adrive``.

    Each step yields ``(wait, *arguments)``; ``wait(*arguments)`` is called
    (and, when ``awaiting``, the coroutine it returns is awaited: this
    generator then yields what it awaits, as a coroutine does) and its answer
    sent back. An exception from a wait (a time-out of the caller's own, a
    Ctrl-C, a closed socket) is thrown into the steps, which clean up and
    raise it, or handle it (a subscription ends quietly when its socket
    closes). Returns the call's result.
    """
    answer: Any = None
    failure: BaseException | None = None
    with closing(steps):
        try:
            while True:
                if failure is None:
                    request = steps.send(answer)
                else:
                    request, failure = steps.throw(failure), None
                try:
                    answer = request[0](*request[1:])
                    if awaiting:
                        answer = yield from answer.__await__()
                except BaseException as exc:  # handed to the steps, which raise it or handle it
                    failure = exc
        except StopIteration as done:
            return done.value


def drive(steps: Any) -> Any:
    """Run the ``steps`` of a call that must wait, blocking the thread or greenlet; return its result."""
    try:
        next(driving(steps, awaiting=False))
    except StopIteration as done:
        return done.value
    raise AssertionError("a blocking wait never yields")  # pragma: no cover
