"""How the long-running commands (``tail`` and the devices) stop: Ctrl-C and SIGTERM set an event.

The command's loop checks the event at least every 0.2 s, so it stops
cleanly and closes its sockets. A handler that only sets an event is never
lost: Python's default Ctrl-C handler raises ``KeyboardInterrupt`` wherever
the interpreter happens to check for signals, and some places (an object
being freed, a C callback) can only print such an exception and carry on.
A second Ctrl-C, while the command is already stopping, raises
``KeyboardInterrupt`` as usual.

A command started with Ctrl-C ignored (the background job of a shell script)
keeps ignoring it, as every Python program does; SIGTERM always stops it.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable


def stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM and Ctrl-C (SIGINT) set ``stop``; return a function that restores the old handlers.

    Must be called from the main thread (only it may set signal handlers).

    Parameters
    ----------
    stop : threading.Event
        the event the command's loop checks

    Returns
    -------
    callable
        called with no arguments, it puts back the handlers found.

    >>> import threading
    >>> stop = threading.Event()
    >>> restore = stop_on_signals(stop)
    >>> signal.raise_signal(signal.SIGTERM)
    >>> stop.is_set()
    True
    >>> restore()
    """

    def handle(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt  # the second Ctrl-C: stop at once
        stop.set()

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signum == signal.SIGINT and signal.getsignal(signum) == signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
