"""Turn-taking on one socket, without I/O: who waits, who is woken, who is told of a close.

A socket's descriptor (``zmq.FD``) is edge-triggered: it signals that the
socket's ``EVENTS`` may have changed, and whoever touches the socket may
consume that signal. So the tasks (or greenlets) waiting on a socket are
listed, in arrival order, on its record as :class:`Sleeper` objects, and
every time the socket's ``EVENTS`` are read (the descriptor fired, or the
manager just sent or received) :func:`to_wake` says who goes on:

* the first sleeper waiting for each ready direction (``POLLIN``,
  ``POLLOUT``), and no more: 200 waiters on one socket do not stampede;
* a sleeper already on its way (woken, or not parked right now because it is
  checking the socket itself) holds its direction: nobody else is woken for it.

A woken sleeper that then leaves without taking what woke it (it timed out,
was cancelled, or found the message gone) hands the turn on: :func:`leave`
tells its flavour to read ``EVENTS`` again for the others. :func:`to_close`
lists everyone parked when the socket closes.

The flavours (:mod:`agentzero.flavours.cooperative`) park and wake; every
decision is here, and is tested against a simple model without sockets.

>>> from agentzero.manager.backend import POLLIN, POLLOUT
>>> first, second, writer = Sleeper(POLLIN), Sleeper(POLLIN), Sleeper(POLLOUT)
>>> for sleeper in (first, second, writer):
...     sleeper.handle = object()  # parked
>>> waiters = [first, second, writer]
>>> to_wake(waiters, POLLIN) == [first]
True
>>> to_wake(waiters, POLLIN | POLLOUT) == [writer]  # first is on its way: it holds POLLIN
True
>>> leave(waiters, first)  # others still wait: read EVENTS again for them
True
"""

from __future__ import annotations

from typing import Any

from agentzero.manager.backend import POLLIN, POLLOUT

#: what a parked sleeper is told when it goes on
WOKEN = "woken"
#: ... when its socket was closed
CLOSED = "closed"
#: ... when its slice of waiting ended (it looks at the socket itself, then parks again)
SLICE_ENDED = "slice ended"

_DIRECTIONS = POLLIN | POLLOUT


class Sleeper:
    """One task (or greenlet, or one poll) waiting on one socket.

    Attributes
    ----------
    mechanism : int
        what it waits for: ``POLLIN``, ``POLLOUT`` or both
    handle : object or None
        what its flavour wakes it with (a gevent ``Waiter``, an asyncio future),
        while it is parked; ``None`` while it runs
    woken : bool
        it was chosen to go on and has not parked again since
    """

    __slots__ = ("handle", "mechanism", "woken")

    def __init__(self, mechanism: int) -> None:
        self.mechanism = mechanism
        self.handle: Any = None
        self.woken = False

    def park(self, handle: Any) -> None:
        """Mark the sleeper parked on ``handle``, waiting to be chosen."""
        self.handle = handle
        self.woken = False

    def __repr__(self) -> str:
        state = "woken" if self.woken else "parked" if self.handle is not None else "running"
        return f"<Sleeper mechanism={self.mechanism} {state}>"


def to_wake(waiters: list[Sleeper], ready: int) -> list[Sleeper]:
    """Choose who goes on now that the socket is ``ready`` (its ``EVENTS``); mark them woken.

    Parameters
    ----------
    waiters : list of Sleeper
        the socket's sleepers, in arrival order
    ready : int
        the socket's ``EVENTS`` (``POLLIN``/``POLLOUT`` bits)

    Returns
    -------
    list of Sleeper
        at most one sleeper per ready direction: the first one, unless a
        sleeper before it is already on its way for that direction.
    """
    chosen: list[Sleeper] = []
    unclaimed = ready & _DIRECTIONS
    for sleeper in waiters:
        if not unclaimed:
            break
        claim = sleeper.mechanism & unclaimed
        if not claim:
            continue
        unclaimed &= ~claim
        if sleeper.woken or sleeper.handle is None:
            continue  # on its way, or looking at the socket itself: it holds this direction
        sleeper.woken = True
        chosen.append(sleeper)
    return chosen


def leave(waiters: list[Sleeper], sleeper: Sleeper) -> bool:
    """Take ``sleeper`` off the socket (if still there); tell whether the others must be looked at again.

    Returns
    -------
    bool
        ``True`` when others still wait: the leaver may have been woken for
        something it did not take, so ``EVENTS`` must be read again for them
        (after the leaver's own operation). ``False`` when nobody waits any
        more: the flavour stops watching the descriptor.
    """
    for index, waiting in enumerate(waiters):
        if waiting is sleeper:
            del waiters[index]
            break
    return bool(waiters)


def to_close(waiters: list[Sleeper]) -> list[Sleeper]:
    """Choose who is told that the socket closed: every parked sleeper not already on its way."""
    chosen = [sleeper for sleeper in waiters if sleeper.handle is not None and not sleeper.woken]
    for sleeper in chosen:
        sleeper.woken = True
    return chosen
