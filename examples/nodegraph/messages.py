"""The messages of the command node and its node runners, field for field as in seed 001.

Every message is JSON on the wire, with its type under the key ``type``:

>>> message = PingMsg(node_id="command")
>>> frame = message.to_bytes()
>>> b'"type":"ping"' in frame
True
>>> type(Message.from_bytes([b"some-identity", frame])).__name__
'PingMsg'

Errors cross the wire as plain data (the exception's qualified type name, its
arguments and the remote traceback); nothing received is imported or unpickled.
"""

from __future__ import annotations

import builtins
import datetime
import traceback
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypedDict

from agentzero.errors import DeserializationError, SerializationError
from agentzero.serializers import BaseSerializer

Epoch = int


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


class IdentifyValue(TypedDict):
    node_id: str
    outbox: str
    status: NodeStatus
    signals: Optional[list[str]]
    slots: Optional[list[str]]


class AnnounceValue(TypedDict):
    inbox: str
    nodes: dict[str, IdentifyValue]


class ErrorValue(TypedDict):
    err_type: str  # the qualified name of the exception type, e.g. "builtins.ValueError"
    err_args: tuple
    traceback: str


class ProcessValue(TypedDict):
    epoch: Epoch
    input: Optional[dict]


class Event(BaseModel):
    """One signal a node emitted in an epoch."""

    kind: Literal["event"] = "event"
    node_id: str
    signal: str
    epoch: Epoch
    value: Any = None


class MetaEvent(BaseModel):
    """Something about a node rather than its output (e.g. that an epoch produced nothing)."""

    kind: Literal["meta"] = "meta"
    node_id: str
    signal: str
    epoch: Optional[Epoch] = None
    value: Any = None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Message(BaseModel):
    model_config = ConfigDict(
        use_enum_values=True, validate_by_alias=True, validate_by_name=True, serialize_by_alias=True
    )

    node_id: str
    timestamp: datetime.datetime = Field(default_factory=_now)
    type_: MessageType = Field(alias="type")
    value: Any = None

    _registry: ClassVar[dict[str, type[Message]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        default = cls.model_fields["type_"].default
        if isinstance(default, MessageType):
            Message._registry[default.value] = cls

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
            header = _Header.model_validate_json(msg[-1])
        except ValidationError as error:
            raise MalformedMessage(f"not a message: {_first_error(error)}") from None
        subclass = Message._registry.get(header.type_, Message)
        try:
            return subclass.model_validate_json(msg[-1])
        except ValidationError as error:
            raise MalformedMessage(f"bad {header.type_} message: {_first_error(error)}") from None

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode("utf-8")


class _Header(BaseModel):
    model_config = ConfigDict(validate_by_alias=True, use_enum_values=True)
    type_: MessageType = Field(alias="type")


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "message"
    return f"{where}: {first.get('msg')}"


class AnnounceMsg(Message):
    """Command node 'announces' identities of other peers and the events they emit."""

    type_: Literal[MessageType.announce] = Field(MessageType.announce, alias="type")
    value: AnnounceValue


class IdentifyMsg(Message):
    """A node sends its configuration to the command node on initialization."""

    type_: Literal[MessageType.identify] = Field(MessageType.identify, alias="type")
    value: IdentifyValue


class PingMsg(Message):
    """Request other nodes to identify themselves and report their status."""

    type_: Literal[MessageType.ping] = Field(MessageType.ping, alias="type")
    value: None = None


class ProcessMsg(Message):
    """Process a single iteration of the graph."""

    type_: Literal[MessageType.process] = Field(MessageType.process, alias="type")
    value: ProcessValue


class InitMsg(Message):
    """Initialize nodes within node runners."""

    type_: Literal[MessageType.init] = Field(MessageType.init, alias="type")
    value: None = None


class DeinitMsg(Message):
    """Deinitializes nodes within node runners."""

    type_: Literal[MessageType.deinit] = Field(MessageType.deinit, alias="type")
    value: None = None


class StartMsg(Message):
    """Start free-running nodes (for ``value`` epochs, or until stopped)."""

    type_: Literal[MessageType.start] = Field(MessageType.start, alias="type")
    value: Optional[int] = None


class StatusMsg(Message):
    """Node updating its current status."""

    type_: Literal[MessageType.status] = Field(MessageType.status, alias="type")
    value: NodeStatus


class StopMsg(Message):
    """Stop processing."""

    type_: Literal[MessageType.stop] = Field(MessageType.stop, alias="type")
    value: None = None


class ErrorMsg(Message):
    """An error occurred in one of the processing nodes."""

    type_: Literal[MessageType.error] = Field(MessageType.error, alias="type")
    value: ErrorValue

    @classmethod
    def from_exception(cls, node_id: str, error: BaseException) -> ErrorMsg:
        kind = type(error)
        return cls(
            node_id=node_id,
            value={
                "err_type": f"{kind.__module__}.{kind.__qualname__}",
                "err_args": tuple(_plain(arg) for arg in error.args),
                "traceback": "".join(traceback.format_exception(kind, error, error.__traceback__)),
            },
        )

    def to_exception(self) -> Exception:
        """Rebuild the error: a built-in exception type as itself, anything else as RemoteNodeError.

        The result carries ``node_id`` and ``remote_traceback``.
        """
        from examples.nodegraph.command import RemoteNodeError

        module, _, name = self.value["err_type"].rpartition(".")
        args = tuple(self.value["err_args"])
        kind = getattr(builtins, name, None) if module == "builtins" else None
        error: Exception
        if isinstance(kind, type) and issubclass(kind, Exception):
            try:
                error = kind(*args)
            except Exception:
                error = RemoteNodeError(self.node_id, self.value["err_type"], args)
        else:
            error = RemoteNodeError(self.node_id, self.value["err_type"], args)
        error.node_id = self.node_id  # type: ignore[attr-defined]
        error.remote_traceback = self.value["traceback"]  # type: ignore[attr-defined]
        return error


class EpochEndedMsg(Message):
    """Command node is signaling that an epoch has been completed to all nodes."""

    type_: Literal[MessageType.epoch_ended] = Field(MessageType.epoch_ended, alias="type")
    value: Epoch


class EventMsg(Message):
    type_: Literal[MessageType.event] = Field(MessageType.event, alias="type")
    value: list[Annotated[Union[Event, MetaEvent], Field(discriminator="kind")]]


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


class MessageSerializer(BaseSerializer):
    """Lets a SocketManager send and receive these messages with its ``*_safe`` calls."""

    binary = True  # unpack() takes the frame's bytes

    def pack(self, data: Message) -> bytes:
        try:
            return data.to_bytes()
        except (AttributeError, ValueError) as error:
            raise SerializationError(self, data, error) from error

    pack_bytes = pack

    def unpack(self, data: bytes) -> Message:
        try:
            return Message.from_bytes([data])
        except MalformedMessage as error:
            raise DeserializationError(data, str(error)) from None
