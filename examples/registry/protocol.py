"""The registry protocol of seed 002, field for field: dataclasses whose ``dict()`` drops ``None``.

>>> WorkerPing(timestamp=5).type
'ping'
>>> AvailabilityResponse(job_id="j1", available=True).dict()
{'type': 'availability_response', 'job_id': 'j1', 'available': True}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Optional, Tuple

from examples.registry.checks import ProtocolError, checker_for


class _Message:
    def dict(self) -> Dict[str, Any]:
        """Convert to dictionary, excluding None values."""
        return {key: value for key, value in self.__dict__.items() if value is not None}


_SCHEMAS: Dict[type, Dict[str, Any]] = {}


def _schema(kind: type) -> Dict[str, Any]:
    """The field checks of ``kind``, built once from its declarations."""
    schema = _SCHEMAS.get(kind)
    if schema is None:
        schema = {field.name: checker_for(str(field.type)) for field in dataclasses.fields(kind)}
        _SCHEMAS[kind] = schema
    return schema


def parse(kind: type, data: Any) -> Tuple[Any, List[str]]:
    """Build the dataclass ``kind`` from a received dict; return it and the names of the fields it ignored.

    Fields ``kind`` does not declare are ignored (newer peers add some, e.g.
    upstream's later ``JobAssignment.wait``); every declared field present is
    type-checked, ``None`` only where the field is ``Optional``.

    Parameters
    ----------
    kind : type
        one of this module's message dataclasses
    data : object
        the decoded JSON of a received message

    Returns
    -------
    tuple
        ``(message, unknown)``: the message, and the sorted names of the unknown fields

    Raises
    ------
    ProtocolError
        when ``data`` is not an object, a required field is missing, a field has
        the wrong type, or ``type`` names another message.
    """
    if type(data) is not dict:
        raise ProtocolError(f"a {kind.__name__} must be an object, got {type(data).__name__}")
    schema = _schema(kind)
    known: Dict[str, Any] = {}
    unknown: List[str] = []
    for name, value in data.items():
        check = schema.get(name)
        if check is None:
            unknown.append(name)
        else:
            known[name] = check(f"{kind.__name__}.{name}", value)
    try:
        message = kind(**known)
    except TypeError as error:
        raise ProtocolError(f"bad {kind.__name__}: {error}") from None
    expected = _TYPES.get(kind)
    if expected is not None and message.type != expected:
        raise ProtocolError(f"a {kind.__name__} has type {expected!r}, got {message.type!r}")
    unknown.sort()
    return message, unknown


def from_dict(kind: type, data: Any) -> Any:
    """Build the dataclass ``kind`` from a received dict, ignoring unknown fields (see :func:`parse`).

    Raises
    ------
    ProtocolError
        when a declared field is missing or has the wrong type.
    """
    return parse(kind, data)[0]


@dataclass
class AvailabilityRequest(_Message):
    """Request from server asking if worker is available for a job."""

    type: str = "availability_request"
    job_id: str = ""
    job_type: str = ""
    room_id: str = ""
    room_name: str = ""
    agent_name: str = ""
    namespace: str = ""


@dataclass
class AvailabilityResponse(_Message):
    """Response from worker indicating availability."""

    type: str = "availability_response"
    job_id: str = ""
    available: bool = False
    error: Optional[str] = None
    token: Optional[str] = None


@dataclass
class JobAssignment(_Message):
    """Job assignment from server to worker."""

    type: str = "job_assignment"
    job_id: str = ""
    job_type: str = ""
    room_id: str = ""
    room_name: str = ""
    agent_name: str = ""
    namespace: str = ""
    token: str = ""
    url: str = ""
    room_options: Optional[Dict[str, Any]] = None
    metadata: Optional[Dict[str, Any]] = None


class JobStatus(str, Enum):
    """Job status enumeration."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class JobTermination(_Message):
    """Job termination request from server."""

    type: str = "job_termination"
    job_id: str = ""
    reason: Optional[str] = None


@dataclass
class JobUpdate(_Message):
    """Update from worker about job status."""

    type: str = "job_update"
    job_id: str = ""
    status: str = ""
    error: Optional[str] = None
    participant_identity: Optional[str] = None
    participant_name: Optional[str] = None
    participant_metadata: Optional[str] = None


@dataclass
class ServerMessage(_Message):
    """Base message from server to worker."""

    type: str
    worker_id: Optional[str] = None
    success: Optional[bool] = None
    message: Optional[str] = None
    job_id: Optional[str] = None
    job_type: Optional[str] = None
    room_id: Optional[str] = None
    room_name: Optional[str] = None
    agent_name: Optional[str] = None
    namespace: Optional[str] = None
    token: Optional[str] = None
    url: Optional[str] = None


@dataclass
class UpdateJobStatus:
    """Update job status message."""

    job_id: str
    status: JobStatus
    error: Optional[str] = None
    participant_identity: Optional[str] = None
    participant_name: Optional[str] = None
    participant_metadata: Optional[str] = None


class WorkerStatus(str, Enum):
    """Worker status enumeration."""

    IDLE = "idle"
    BUSY = "busy"
    OFFLINE = "offline"
    ERROR = "error"


@dataclass
class UpdateWorkerStatus:
    """Update worker status message."""

    status: WorkerStatus
    load: Optional[float] = None
    job_count: Optional[int] = None
    error: Optional[str] = None


@dataclass
class WorkerMessage(_Message):
    """Base message from worker to server."""

    type: str
    worker_id: Optional[str] = None
    agent_name: Optional[str] = None
    namespace: Optional[str] = None
    version: Optional[str] = None
    capabilities: Optional[List[str]] = None
    status: Optional[str] = None
    load: Optional[float] = None
    job_count: Optional[int] = None
    job_id: Optional[str] = None
    available: Optional[bool] = None
    participant_identity: Optional[str] = None
    participant_name: Optional[str] = None
    participant_metadata: Optional[str] = None
    error: Optional[str] = None
    registry_uuid: Optional[str] = None
    max_capacity: Optional[int] = None
    current_load: Optional[float] = None
    token: Optional[str] = None
    load_threshold: Optional[float] = None
    max_processes: Optional[int] = None


@dataclass
class WorkerPing(_Message):
    """Ping message from worker."""

    type: str = "ping"
    timestamp: Optional[int] = None


@dataclass
class WorkerPong(_Message):
    """Pong response from server."""

    type: str = "pong"
    timestamp: Optional[int] = None


# Message type constants, as upstream names them (VideoSDK agents ``backend/protocol.py``)
MSG_TYPE_REGISTER = "register"
MSG_TYPE_STATUS_UPDATE = "status_update"
MSG_TYPE_AVAILABILITY_REQUEST = "availability_request"
MSG_TYPE_AVAILABILITY_RESPONSE = "availability_response"
MSG_TYPE_JOB_ASSIGNMENT = "job_assignment"
MSG_TYPE_JOB_UPDATE = "job_update"
MSG_TYPE_JOB_TERMINATION = "job_termination"
MSG_TYPE_PING = "ping"
MSG_TYPE_PONG = "pong"

#: the ``type`` each message class carries (the ones with a fixed default)
_TYPES: Dict[type, str] = {
    kind: kind.type  # type: ignore[attr-defined]
    for kind in (
        AvailabilityRequest,
        AvailabilityResponse,
        JobAssignment,
        JobTermination,
        JobUpdate,
        WorkerPing,
        WorkerPong,
    )
}

__all__ = [
    "AvailabilityRequest",
    "AvailabilityResponse",
    "JobAssignment",
    "JobStatus",
    "JobTermination",
    "JobUpdate",
    "MSG_TYPE_AVAILABILITY_REQUEST",
    "MSG_TYPE_AVAILABILITY_RESPONSE",
    "MSG_TYPE_JOB_ASSIGNMENT",
    "MSG_TYPE_JOB_TERMINATION",
    "MSG_TYPE_JOB_UPDATE",
    "MSG_TYPE_PING",
    "MSG_TYPE_PONG",
    "MSG_TYPE_REGISTER",
    "MSG_TYPE_STATUS_UPDATE",
    "ProtocolError",
    "ServerMessage",
    "UpdateJobStatus",
    "UpdateWorkerStatus",
    "WorkerMessage",
    "WorkerPing",
    "WorkerPong",
    "WorkerStatus",
    "from_dict",
    "parse",
]
