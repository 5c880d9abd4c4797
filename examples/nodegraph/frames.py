"""Hot-path frames: the exact bytes the message models write, without building the models.

Every epoch each node sends one ``event`` message and the command node two
commands (``process``, ``epoch_ended``). Building pydantic models for them and
dumping those costs several times more than the sending itself, so for the
common case (values JSON carries as they are) the frame is written straight
from plain data with ``pydantic_core.to_json``, the serializer the models use
themselves. Anything else returns ``None`` and the caller takes the model path.
``tests/examples/test_nodegraph_frames.py`` holds both paths to the same bytes.

Reading is the mirror image: :func:`read_event` takes an ``event`` message
apart without building a model for it and its items (which costs more than
validating it). It accepts only the narrow shape our runners and upstream's
write (every key present, none extra, plain values, a ``Z``/``+00:00`` time),
parsed by pydantic-core's own JSON parser, so whatever it accepts the models
accept, to the same values; anything else returns ``None`` and the caller
takes the model path, which accepts or rejects it as before.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any, Optional

from pydantic_core import PydanticSerializationError, from_json, to_json

from examples.nodegraph.events import MetaSignal, parse_epoch
from examples.nodegraph.pickles import PREFIX as PICKLED

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
    if not stamp.endswith("+00:00"):
        return _event_frame(node_id, epoch, items, now, stamp)
    # The message's own time is what pydantic writes for a UTC datetime: isoformat, "Z" for
    # "+00:00" (the unit tests hold this to the models' bytes, microseconds or none).
    try:
        node, at, at_epoch = to_json(node_id), stamp.encode(), to_json(epoch)
        parts = []
        for event_id, signal, value in items:
            if isinstance(value, str) and value == NO_EVENT:
                value = NO_EVENT  # also the MetaSignal.NoEvent enum member
            elif not plain(value):
                return None
            parts.append(
                b'{"id":%d,"timestamp":"%s","node_id":%s,"signal":%s,"epoch":%s,"value":%s}'
                % (event_id, at, node, to_json(signal), at_epoch, to_json(value))
            )
    except (PydanticSerializationError, ValueError, TypeError):
        return None  # e.g. a lone surrogate in a string: the model path pickles it
    return b'{"type":"event","node_id":%s,"timestamp":"%sZ","value":[%s]}' % (node, at[:-6], b",".join(parts))


def _event_frame(
    node_id: str, epoch: Any, items: list[tuple[int, str, Any]], now: datetime.datetime, stamp: str
) -> Optional[bytes]:
    values = []
    for event_id, signal, value in items:
        if isinstance(value, str) and value == NO_EVENT:
            value = NO_EVENT
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


#: an ``event`` message as ``(node_id, [(item node_id, signal, epoch, value), ...])``
EventItems = tuple[str, list[tuple[str, str, Any, Any]]]
EVENT_START = b'{"type":"event",'
_MESSAGE_KEYS = frozenset(("type", "node_id", "timestamp", "value"))
_ITEM_KEYS = frozenset(("id", "timestamp", "node_id", "signal", "epoch", "value"))
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?(?:Z|\+00:00)")


def read_event(frame: Any) -> Optional[EventItems]:
    """``(node_id, items)`` of a plain ``event`` message (no meta events), or ``None``.

    ``None`` whenever the frame is anything else, malformed or not: the caller
    then parses it with the models (:meth:`Message.from_bytes`).
    """
    if not frame.startswith(EVENT_START):
        return None
    try:
        data = from_json(frame, allow_inf_nan=False)
    except ValueError:  # not JSON, a lone surrogate, too deep...: the models say what
        return None
    if type(data) is not dict or data.keys() != _MESSAGE_KEYS or data["type"] != "event":
        return None
    node_id, entries, stamp = data["node_id"], data["value"], data["timestamp"]
    if type(node_id) is not str or type(entries) is not list or not _stamp(stamp):
        return None
    same_time = stamp[:-1] + "+00:00" if stamp[-1] == "Z" else stamp  # how items write it
    items = []
    for entry in entries:
        if type(entry) is not dict or entry.keys() != _ITEM_KEYS:
            return None
        source, signal, value = entry["node_id"], entry["signal"], entry["value"]
        if type(source) is not str or source == "meta" or type(signal) is not str:
            return None
        if type(entry["id"]) is not int or (
            entry["timestamp"] != same_time and not _stamp(entry["timestamp"])
        ):
            return None
        kind = type(value)
        if kind is str:
            if value.startswith(PICKLED):
                return None
            if value == NO_EVENT:
                value = MetaSignal.NoEvent
        elif kind is float:
            if not math.isfinite(value):
                return None
        elif kind not in _PLAIN:
            return None  # a list or a dict: the models check what is inside
        try:
            epoch = parse_epoch(entry["epoch"])
        except ValueError:
            return None
        items.append((source, signal, epoch, value))
    return node_id, items


def _stamp(text: Any) -> bool:
    """Whether ``text`` is a time as isoformat() writes it in UTC (and a real one)."""
    if type(text) is not str or not _STAMP.fullmatch(text):
        return False
    try:
        datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:  # e.g. the 31st of February
        return False
    return True
