"""The examples' rich output: wrapped at the terminal's width, and not at all when it is piped."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console

#: the width rich is given when output is piped: a table takes what it needs, up to this
PIPED_WIDTH = 1000


def make_console(**options: Any) -> Console:
    """Return a rich :class:`~rich.console.Console` for an example's output.

    On a terminal, rich wraps at the terminal's width. Piped (into a file,
    ``grep`` or a test), rich would wrap at 80 columns, breaking the lines a
    reader or a script looks for and squeezing tables; so then lines are not
    wrapped at all (table titles are not centred either) and tables are as
    wide as their content, up to :data:`PIPED_WIDTH` columns, unless the
    ``COLUMNS`` environment variable sets a width.

    Parameters
    ----------
    **options
        passed to :class:`~rich.console.Console` (``file=``, ``stderr=``...)

    Returns
    -------
    rich.console.Console
        the console to print with.
    """
    console = Console(**options)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPED_WIDTH
        console.soft_wrap = True
    return console
