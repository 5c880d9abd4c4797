"""Log lines about peers, rate-limited: a flood of bad messages is counted in full but logged in brief.

The registry says once, for each message it rejects, what was wrong with it.
A hostile peer can send thousands of bad messages a second; logging each would
flood the log (and slow the loop down to the speed of the log's disk). A
:class:`ThrottledLog` lets through at most ``burst`` lines about one peer and
``limit`` lines in all per ``interval`` seconds, and drops the rest; when an
interval in which lines were dropped is over, one summary line says how many,
for what reason, and about which peer most. The registry's counters still count
every message: only the log is brief.

Windows are aligned: every ``interval`` seconds all budgets are renewed at once.
What it keeps is bounded by ``limit``: a peer is remembered only once a line
about it was logged.

>>> import logging
>>> lines = ThrottledLog(logging.getLogger("doctest"), interval=60, burst=2, limit=10)
>>> [lines.log(logging.WARNING, b"peer", "skipped", "bad message %d", n) for n in range(5)]
[True, True, False, False, False]
>>> lines.suppressed
3
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Dict, Optional

DEBUG, INFO, WARNING, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR


def _check_count(name: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class ThrottledLog:
    """A logger's lines about peers, at most ``burst`` a peer and ``limit`` in all per ``interval``.

    Parameters
    ----------
    logger : logging.Logger
        where the lines go
    interval : float
        the length of a window, in seconds
    burst : int
        the most lines about one peer in a window
    limit : int
        the most lines about all peers together in a window

    Raises
    ------
    ValueError
        when ``interval`` is not a finite positive number, or ``burst`` or ``limit``
        not a positive integer.

    Attributes
    ----------
    suppressed : int
        lines dropped in the current window (reset when its summary is logged)
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0, burst: int = 32, limit: int = 128):
        if not (type(interval) in (int, float) and 0 < interval < math.inf):
            raise ValueError(f"log_interval must be a finite positive number of seconds, got {interval!r}")
        self.logger = logger
        self.interval = float(interval)
        self.burst = _check_count("log_burst", burst)
        self.limit = _check_count("log_limit", limit)
        self.suppressed = 0
        self._ends = time.monotonic() + self.interval
        self._logged = 0
        self._per_peer: Dict[bytes, int] = {}  # lines logged in this window, then lines dropped
        self._dropped_of: Dict[bytes, int] = {}
        self._reasons: Dict[str, int] = {}

    def log(self, level: int, peer: bytes, reason: str, message: str, *args: Any, **options: Any) -> bool:
        """Log ``message % args`` about ``peer`` at ``level``, unless its budget for this window is spent.

        Parameters
        ----------
        level : int
            a :mod:`logging` level; nothing happens (nothing is counted) if the logger would not log it
        peer : bytes
            the peer's routing identity: each peer has its own budget
        reason : str
            a short fixed word for the summary (the counter the message went to, say)
        message : str
            the format string, with ``args`` (formatted only if logged)
        **options
            passed to :meth:`logging.Logger.log` (``exc_info``...)

        Returns
        -------
        bool
            whether the line was logged.
        """
        if not self.logger.isEnabledFor(level):
            return False
        now = time.monotonic()
        if now >= self._ends:
            self.flush(now)
        lines = self._per_peer.get(peer, 0)
        if lines < self.burst and self._logged < self.limit:
            self._per_peer[peer] = lines + 1
            self._logged += 1
            self.logger.log(level, message, *args, stacklevel=2, **options)
            return True
        self.suppressed += 1
        self._reasons[reason] = self._reasons.get(reason, 0) + 1
        if lines:  # a peer that had lines logged: bounded by ``limit``
            self._dropped_of[peer] = self._dropped_of.get(peer, 0) + 1
        return False

    def flush(self, now: Optional[float] = None, force: bool = False) -> None:
        """End the window if it is over (or ``force``): log the summary of what was dropped, renew budgets.

        Parameters
        ----------
        now : float, optional
            :func:`time.monotonic`, if the caller has it
        force : bool
            end the window now, over or not (when closing)
        """
        now = time.monotonic() if now is None else now
        if now < self._ends and not force:
            return
        if self.suppressed:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self._reasons.items()))
            summary = (
                f"suppressed {self.suppressed} log line(s) about peers"
                f" in the last {self.interval:g} s ({reasons})"
            )
            if self._dropped_of:
                peer, count = max(self._dropped_of.items(), key=lambda item: item[1])
                summary += f", {count} about {peer[:32]!r}"
            self.logger.warning(summary)
        self.suppressed = self._logged = 0
        self._per_peer.clear()
        self._dropped_of.clear()
        self._reasons.clear()
        self._ends = now + self.interval
