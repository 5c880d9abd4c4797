"""The messages of the command node and its node runners, byte for byte as noob 1002's.

Every message is one JSON frame (routing frames before it are ignored), its
type under the key ``type``, its fields in upstream's order:

>>> frame = PingMsg(node_id="command").to_bytes()
>>> frame.startswith(b'{"type":"ping","node_id":"command","timestamp":"')
True
>>> type(Message.from_bytes([b"some-identity", frame])).__name__
'PingMsg'

Wire details that upstream fixes and this module follows:

- an event item is ``{id, timestamp, node_id, signal, epoch, value}``; a *meta*
  event is told apart by ``node_id == "meta"`` (its ``signal`` a
  :class:`MetaEventType`); an item's timestamp is ``datetime.isoformat()``;
- "this signal emitted nothing" is the value ``"__META__NoEvent"``
  (:data:`MetaSignal.NoEvent`);
- an epoch is an int, or a sub-epoch ``[3, ["mapnode", 1], ...]`` (here the
  tuple ``(3, ("mapnode", 1))``);
- a value JSON cannot carry travels as ``"pck__" + base64(pickle)``, and so
  does every error: the whole ``ErrorValue`` dict, whose ``err_type`` is the
  exception class.

Safety: received ``pck__`` values are decoded by
:class:`examples.nodegraph.unpickler.SafeUnpickler`, which imports nothing and
bounds its work by the pickle's size, so a peer's pickle cannot run code here
nor exhaust memory (the argument is in :mod:`examples.nodegraph.pickles`). Values we
send are pickled only when made of built-in types; an exception whose type is
not built in travels as its nearest built-in base class, with its qualified
name under the extra key ``err_name`` (upstream ignores unknown keys) and in
the traceback text.
"""

from __future__ import annotations

import datetime
import itertools
import random
import traceback
from enum import Enum
from typing import Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticSerializationError
from typing_extensions import Annotated, TypedDict

from agentzero.errors import DeserializationError, SerializationError
from agentzero.serializers import BaseSerializer
from examples.nodegraph import frames, pickles
from examples.nodegraph.events import (  # the event items and epochs, re-exported here
    Epoch,
    Event,
    EventItem,
    MetaEvent,
    MetaEventType,
    MetaSignal,
    _now,
    now,
    parse_epoch,
    root_epoch,
)
from examples.nodegraph.pickles import RemoteGlobal

__all__ = [
    "AnnounceMsg",
    "DeinitMsg",
    "EpochEndedMsg",
    "ErrorMsg",
    "Event",
    "EventMaker",
    "EventMsg",
    "IdentifyMsg",
    "InitMsg",
    "MalformedMessage",
    "Message",
    "MessageSerializer",
    "MessageType",
    "MetaEvent",
    "MetaEventType",
    "MetaSignal",
    "NodeStatus",
    "PingMsg",
    "ProcessMsg",
    "RemoteNodeError",
    "StartMsg",
    "StatusMsg",
    "StopMsg",
    "now",
    "parse_epoch",
    "root_epoch",
]


class MessageType(str, Enum):
    announce = "announce"
    identify = "identify"
    process = "process"
    init = "init"
    deinit = "deinit"
    ping = "ping"
    start = "start"
    status = "status"
    stop = "stop"
    event = "event"
    error = "error"
    epoch_ended = "epoch_ended"


class NodeStatus(str, Enum):
    stopped = "stopped"
    """Node is deinitialized - does not have an instantiated node, etc., but is responsive."""
    waiting = "waiting"
    """Node is waiting for its dependency nodes to be ready."""
    ready = "ready"
    """Node is ready to process events."""
    running = "running"
    """Node is running in free-run mode."""
    closed = "closed"
    """Node is permanently gone, should not be expected to respond to further messages."""


class MalformedMessage(ValueError):
    """Frames that are not a message of this protocol; the text says why."""


class RemoteNodeError(Exception):
    """An exception raised inside a node whose type is not a built-in one.

    ``node_id``, ``err_type`` (its qualified name), ``args`` and
    ``remote_traceback`` say what happened where.
    """

    def __init__(self, node_id: str, err_type: str, args: tuple) -> None:
        self.node_id = node_id
        self.err_type = err_type
        self.remote_args = tuple(args)
        super().__init__(f"node {node_id!r} raised {err_type}{tuple(args)!r}")


class EventMaker:
    """Stamps events with upstream's id scheme (random 32-bit prefix, then a counter) and a time."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._prefix = random.getrandbits(32) << 32
        self._sequence = itertools.count()

    # model_construct: our own values, not validated (a str starting "pck__" stays a str)
    def event(self, signal: str, epoch: Union[int, tuple], value: Any) -> Event:
        return Event.model_construct(
            id=self._prefix ^ next(self._sequence),
            timestamp=_now(),
            node_id=self.node_id,
            signal=signal,
            epoch=epoch,
            value=value,
        )

    def frame(self, epoch: Union[int, tuple], outputs: list[tuple[str, Any]]) -> bytes:
        """The bytes of the ``event`` message for ``(signal, value)`` outputs in ``epoch``.

        Raises
        ------
        TypeError
            when a value is neither JSON nor built of built-in types.
        """
        now = _now()
        items = [(self._prefix ^ next(self._sequence), signal, value) for signal, value in outputs]
        fast = frames.event_frame(self.node_id, epoch, items, now)
        if fast is not None:
            return fast
        events = [
            Event.model_construct(
                id=event_id, timestamp=now, node_id=self.node_id, signal=signal, epoch=epoch, value=value
            )
            for event_id, signal, value in items
        ]
        try:
            return EventMsg(node_id=self.node_id, timestamp=now, value=events).to_bytes()
        except PydanticSerializationError as error:
            raise TypeError(f"cannot send the outputs: {error}") from None

    def meta(self, signal: MetaEventType, epoch: Union[int, tuple], value: Any = None) -> MetaEvent:
        return MetaEvent.model_construct(
            node_id="meta",
            id=self._prefix ^ next(self._sequence),
            timestamp=_now(),
            signal=signal,
            epoch=epoch,
            value=value,
        )


# -- errors -----------------------------------------------------------------------------------


class ErrorValue(TypedDict):
    err_type: type  # a built-in exception class, or a RemoteGlobal stand-in for another one
    err_args: tuple
    traceback: str


def _error_from_wire(value: Any) -> dict:
    if type(value) is str:
        value = pickles.decode(value)
    if type(value) is not dict:
        raise ValueError(f"an error value is a pickled dict, got {type(value).__name__}")
    kind, args, text = value.get("err_type"), value.get("err_args"), value.get("traceback")
    if not isinstance(kind, type) or not issubclass(kind, (Exception, RemoteGlobal)):
        raise ValueError(f"err_type must be an exception class, got {kind!r:.60}")
    if type(args) not in (tuple, list) or type(text) is not str:
        raise ValueError("err_args must be a tuple and traceback a string")
    checked = {"err_type": kind, "err_args": tuple(args), "traceback": text}
    if type(value.get("err_name")) is str:
        checked["err_name"] = value["err_name"]
    return checked


def _error_to_wire(value: dict) -> str:
    return pickles.encode(value, "an error value")


# -- messages -------------------------------------------------------------------------------


class Message(BaseModel):
    model_config = ConfigDict(use_enum_values=True, validate_by_alias=True, serialize_by_alias=True)

    type_: MessageType = Field(alias="type")
    node_id: str
    timestamp: datetime.datetime = Field(default_factory=_now)
    value: Any = None

    @classmethod
    def from_bytes(cls, msg: list[bytes]) -> Message:
        """Parse the last frame of ``msg`` (earlier ones are routing) into the right subclass.

        Raises
        ------
        MalformedMessage
            when the frames are not a valid message.
        """
        if not msg or not isinstance(msg[-1], (bytes, bytearray, memoryview)):
            raise MalformedMessage(f"expected a list of frames, got {msg!r:.80}")
        try:
            return _ADAPTER.validate_json(msg[-1])
        except ValidationError as error:
            raise MalformedMessage(f"not a valid message: {_first_error(error)}") from None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "message"
    return f"{where}: {first.get('msg')}"


class IdentifyValue(TypedDict):
    node_id: str
    outbox: str
    status: NodeStatus
    signals: Optional[list[str]]
    slots: Optional[list[str]]


class AnnounceValue(TypedDict):
    inbox: str
    nodes: dict[str, IdentifyValue]


class ProcessValue(TypedDict):
    epoch: Epoch
    input: Optional[dict]


class AnnounceMsg(Message):
    """Command node 'announces' identities of other peers and the events they emit."""

    type_: Literal["announce"] = Field("announce", alias="type")
    value: AnnounceValue


class IdentifyMsg(Message):
    """A node sends its configuration to the command node on initialization."""

    type_: Literal["identify"] = Field("identify", alias="type")
    value: IdentifyValue


class PingMsg(Message):
    """Request other nodes to identify themselves and report their status."""

    type_: Literal["ping"] = Field("ping", alias="type")
    value: None = None


class ProcessMsg(Message):
    """Process a single iteration of the graph."""

    type_: Literal["process"] = Field("process", alias="type")
    value: ProcessValue


class InitMsg(Message):
    """Initialize nodes within node runners."""

    type_: Literal["init"] = Field("init", alias="type")
    value: None = None


class DeinitMsg(Message):
    """Deinitializes nodes within node runners."""

    type_: Literal["deinit"] = Field("deinit", alias="type")
    value: None = None


class StartMsg(Message):
    """Start free-running nodes (for ``value`` epochs, or until stopped)."""

    type_: Literal["start"] = Field("start", alias="type")
    value: Optional[int] = None


class StatusMsg(Message):
    """Node updating its current status."""

    type_: Literal["status"] = Field("status", alias="type")
    value: NodeStatus


class StopMsg(Message):
    """Stop processing."""

    type_: Literal["stop"] = Field("stop", alias="type")
    value: None = None


class ErrorMsg(Message):
    """An error occurred in one of the processing nodes."""

    type_: Literal["error"] = Field("error", alias="type")
    value: Annotated[
        dict, BeforeValidator(_error_from_wire), PlainSerializer(_error_to_wire, when_used="json")
    ]

    @classmethod
    def from_exception(cls, node_id: str, error: BaseException) -> ErrorMsg:
        """The message for ``error``, pickling only built-in types.

        A built-in exception type travels as itself; any other as its nearest
        built-in base class, its qualified name under ``err_name``. Arguments
        that are not built-in values travel as their ``repr``.
        """
        kind = type(error)
        value: dict[str, Any] = {
            "err_type": _builtin_base(kind),
            "err_args": tuple(_plain(arg) for arg in error.args),
            "traceback": "".join(traceback.format_exception(kind, error, error.__traceback__)),
        }
        if value["err_type"] is not kind:
            value["err_name"] = f"{kind.__module__}.{kind.__qualname__}"
        return cls(node_id=node_id, value=value)

    @property
    def err_name(self) -> str:
        """The qualified name of the exception's type, as the sender knew it."""
        kind = self.value["err_type"]
        if "err_name" in self.value:
            return self.value["err_name"]
        if issubclass(kind, RemoteGlobal):
            return kind.qualified_name
        return f"{kind.__module__}.{kind.__qualname__}"

    def to_exception(self) -> Exception:
        """Rebuild the error: a built-in exception type as itself, anything else as RemoteNodeError.

        The result carries ``node_id`` and ``remote_traceback``.
        """
        kind, args = self.value["err_type"], self.value["err_args"]
        error: Exception
        if "err_name" in self.value or not issubclass(kind, Exception):
            error = RemoteNodeError(self.node_id, self.err_name, args)
        else:
            try:
                error = kind(*args)
            except Exception:
                error = RemoteNodeError(self.node_id, self.err_name, args)
        error.node_id = self.node_id  # type: ignore[attr-defined]
        error.remote_traceback = self.value["traceback"]  # type: ignore[attr-defined]
        return error


def _builtin_base(kind: type) -> type:
    for base in kind.__mro__:
        if base.__module__ == "builtins" and issubclass(base, Exception):
            return base
    return Exception


def _plain(value: Any) -> Any:
    try:
        pickles.check_builtin(value)
    except pickles.NotBuiltinValue:
        return repr(value)
    return value


class EpochEndedMsg(Message):
    """Command node is signaling that an epoch has been completed to all nodes."""

    type_: Literal["epoch_ended"] = Field("epoch_ended", alias="type")
    value: Epoch


class EventMsg(Message):
    """Events a node emitted (on its outbox)."""

    type_: Literal["event"] = Field("event", alias="type")
    value: list[EventItem]


_CLASSES = {
    cls.model_fields["type_"].default: cls
    for cls in (
        AnnounceMsg,
        IdentifyMsg,
        ProcessMsg,
        InitMsg,
        DeinitMsg,
        PingMsg,
        StartMsg,
        StatusMsg,
        StopMsg,
        EventMsg,
        ErrorMsg,
        EpochEndedMsg,
    )
}


# the type field picks the class, in pydantic-core (an unknown type is a validation error)
_ADAPTER: TypeAdapter[Message] = TypeAdapter(
    Annotated[Union[tuple(_CLASSES.values())], Field(discriminator="type_")]  # type: ignore[valid-type]
)


class MessageSerializer(BaseSerializer):
    """Lets a SocketManager send and receive these messages with its ``*_safe`` calls."""

    binary = True  # unpack() takes the frame's bytes

    def pack(self, data: Message | bytes) -> bytes:
        if type(data) is bytes:
            return data  # a frame this module already wrote (see examples.nodegraph.frames)
        try:
            return data.to_bytes()
        except (AttributeError, ValueError, TypeError, PydanticSerializationError) as error:
            raise SerializationError(self, data, error) from error

    pack_bytes = pack

    def unpack(self, data: bytes) -> Message:
        try:
            return Message.from_bytes([data])
        except MalformedMessage as error:
            raise DeserializationError(data, str(error)) from None
