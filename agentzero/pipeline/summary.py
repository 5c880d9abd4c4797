"""How a ``run`` ends: its summary table, each result's hash checked against its file, and its verdict."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from agentzero.pipeline.builtin_steps import file_content

if TYPE_CHECKING:
    from rich.console import Console


def hash_matches(job: dict[str, Any], result: Any) -> bool:
    """Whether ``result`` holds the sha256 of the file that ``job``'s instructions describe."""
    instructions = job["instructions"]
    expected = hashlib.sha256(file_content(instructions["seed"], instructions["size"])).hexdigest()
    return isinstance(result, dict) and result.get("sha256") == expected


def print_table(
    console: Console,
    title: str,
    rows: list[tuple[str, str]],
    completed: int,
    wall: float,
    verified: bool | None,
) -> None:
    """Print ``rows`` (measure, value) as the run's summary, then its throughput, wall time and hash check."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for measure, value in rows:
        table.add_row(measure, value)
    table.add_row("overall throughput", f"{completed / wall:.1f} jobs/s" if wall else "-")
    table.add_row("wall time", f"{wall:.2f} s")
    if verified is not None:
        table.add_row("hashes verified", "yes" if verified else "NO")
    console.print(table)


def verdict(console: Console, whole: bool, verified: bool | None, failure: str, success: str) -> int:
    """Print the run's last line and return its exit code: 0 when it is ``whole`` and no hash was wrong.

    ``failure`` and ``success`` are rich markup, printed as they are.
    """
    if not whole:
        console.print(failure)
    elif verified is False:
        console.print("[red]some results do not match their files[/red]")
    else:
        console.print(success)
    return 0 if whole and verified is not False else 1
