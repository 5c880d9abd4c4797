"""Event items, epochs and values as noob 1002 writes them (the parts of its messages that nest).

- An event item is ``{id, timestamp, node_id, signal, epoch, value}``; a *meta*
  event is one whose ``node_id`` is ``"meta"`` (its ``signal`` a
  :class:`MetaEventType`); an item's timestamp is ``datetime.isoformat()``.
- "This signal emitted nothing" is the value ``"__META__NoEvent"``
  (:data:`MetaSignal.NoEvent`).
- An epoch is an int, or a sub-epoch ``[3, ["mapnode", 1], ...]`` (here the
  tuple ``(3, ("mapnode", 1))``).
- A value JSON cannot carry travels as ``"pck__" + base64(pickle)``, decoded
  on arrival by :mod:`examples.nodegraph.pickles`, which imports nothing.

>>> parse_epoch([3, ["mapnode", 1]])
(3, ('mapnode', 1))
"""

from __future__ import annotations

import datetime
from enum import Enum
from typing import Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    PlainSerializer,
    Tag,
    ValidationInfo,
    WrapSerializer,
)
from pydantic_core import PydanticSerializationError
from typing_extensions import Annotated

from examples.nodegraph import pickles


class MetaEventType(str, Enum):
    NodeReady = "NodeReady"
    EpochEnded = "EpochEnded"


class MetaSignal(str, Enum):
    NoEvent = "__META__NoEvent"
    """The value of a signal that emitted nothing in an epoch."""


_NO_EVENT = MetaSignal.NoEvent.value


# -- epochs --------------------------------------------------------------------------------

_MAX_EPOCH = 2**63 - 1


def _count(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_EPOCH:
        raise ValueError(f"{what} must be an integer from 0 to 2**63-1, got {value!r:.40}")
    return value


def parse_epoch(wire: Any) -> Union[int, tuple]:
    """An epoch from the wire: ``3`` -> ``3``; ``[3, ["mapnode", 1]]`` -> ``(3, ("mapnode", 1))``.

    Raises
    ------
    ValueError
        when ``wire`` is neither a count nor a ``[root, [node, index], ...]`` path.
    """
    if type(wire) is int:
        return _count(wire, "an epoch")
    if type(wire) not in (list, tuple) or not wire:
        raise ValueError(f"an epoch is an int or [root, [node, index], ...], got {wire!r:.60}")
    root = _count(wire[0], "an epoch's root")
    path = []
    for segment in wire[1:]:
        if type(segment) not in (list, tuple) or len(segment) != 2 or type(segment[0]) is not str:
            raise ValueError(f"a sub-epoch segment is [node, index], got {segment!r:.60}")
        path.append((segment[0], _count(segment[1], "a sub-epoch index")))
    return (root, *path) if path else root


def root_epoch(epoch: Union[int, tuple]) -> int:
    """The root of an epoch: ``3`` for ``3`` and for ``(3, ("mapnode", 1))``."""
    return epoch if type(epoch) is int else epoch[0]


Epoch = Annotated[Any, BeforeValidator(parse_epoch)]


# -- values: JSON, or pck__ for what JSON cannot carry ----------------------------------------


def _value_from_wire(value: Any, info: ValidationInfo) -> Any:
    if type(value) is str:
        if value.startswith(pickles.PREFIX) and info.mode == "json":
            return pickles.decode(value)
        if value == _NO_EVENT:
            return MetaSignal.NoEvent
    return value


def _value_to_wire(value: Any, handler: Any) -> Any:
    if type(value) is str:
        if value.startswith(pickles.PREFIX):
            return pickles.encode(value)  # sent raw, it would be decoded as a pickle on arrival
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return pickles.encode(value)  # a lone surrogate: JSON text cannot carry it
    if hasattr(value, "__next__") and not hasattr(value, "__len__"):
        raise pickles.NotBuiltinValue("an event value", value)
    try:
        return handler(value)
    except (TypeError, ValueError, PydanticSerializationError):
        return pickles.encode(value, "an event value")


Value = Annotated[Any, BeforeValidator(_value_from_wire), WrapSerializer(_value_to_wire, when_used="json")]
Timestamp = Annotated[datetime.datetime, PlainSerializer(lambda moment: moment.isoformat(), when_used="json")]


def now() -> datetime.datetime:
    """The current time in UTC, as the messages stamp it."""
    return datetime.datetime.now(datetime.timezone.utc)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Event(BaseModel):
    """One signal a node emitted in an epoch."""

    id: int
    timestamp: Timestamp
    node_id: str
    signal: str
    epoch: Epoch
    value: Value = None


class MetaEvent(Event):
    """An event about the graph rather than a node's output; ``node_id`` is always ``"meta"``."""

    node_id: Literal["meta"] = "meta"
    signal: MetaEventType


def _event_kind(item: Any) -> str:
    node_id = item.get("node_id") if isinstance(item, dict) else getattr(item, "node_id", None)
    return "meta" if node_id == "meta" else "event"


EventItem = Annotated[
    Union[Annotated[Event, Tag("event")], Annotated[MetaEvent, Tag("meta")]], Discriminator(_event_kind)
]
