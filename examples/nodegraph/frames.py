"""Hot-path frames: the exact bytes the message models write, without building the models.

Every epoch each node sends one ``event`` message and the command node two
commands (``process``, ``epoch_ended``). Building pydantic models for them and
dumping those costs several times more than the sending itself, so for the
common case (values JSON carries as they are) the frame is written straight
from plain data with ``pydantic_core.to_json``, the serializer the models use
themselves. Anything else returns ``None`` and the caller takes the model path.
``tests/unit/test_nodegraph_frames.py`` holds both paths to the same bytes.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Optional

from pydantic_core import PydanticSerializationError, to_json

NO_EVENT = "__META__NoEvent"
_PLAIN = (type(None), bool, int, str)


def plain(value: Any) -> bool:
    """Whether ``value`` goes into JSON as it is (so the model path would write it the same way)."""
    kind = type(value)
    if kind is str:
        return not value.startswith("pck__")
    if kind is float:
        return math.isfinite(value)
    return kind in _PLAIN and (kind is not int or -(2**63) <= value < 2**64)


def event_frame(
    node_id: str, epoch: Any, items: list[tuple[int, str, Any]], now: datetime.datetime
) -> Optional[bytes]:
    """The ``event`` message of ``node_id`` for ``(id, signal, value)`` items, or ``None``.

    ``None`` when a value is not :func:`plain`: the caller builds the models.
    A value ``NO_EVENT`` (or the ``MetaSignal.NoEvent`` enum) is written as such.
    """
    stamp = now.isoformat()
    values = []
    for event_id, signal, value in items:
        if isinstance(value, str) and value == NO_EVENT:
            value = NO_EVENT  # also the MetaSignal.NoEvent enum member
        elif not plain(value):
            return None
        values.append(
            {
                "id": event_id,
                "timestamp": stamp,
                "node_id": node_id,
                "signal": signal,
                "epoch": epoch,
                "value": value,
            }
        )
    return _frame("event", node_id, now, values)


def command_frame(kind: str, node_id: str, value: Any, now: datetime.datetime) -> Optional[bytes]:
    """A command whose value is plain JSON (``process`` without input, ``epoch_ended``), or ``None``."""
    return _frame(kind, node_id, now, value)


def _frame(kind: str, node_id: str, now: datetime.datetime, value: Any) -> Optional[bytes]:
    try:
        return to_json({"type": kind, "node_id": node_id, "timestamp": now, "value": value})
    except (PydanticSerializationError, ValueError, TypeError):
        return None  # e.g. a lone surrogate in a string: the model path pickles it
