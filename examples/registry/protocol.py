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
from typing import Any, Dict, List, Optional


class _Message:
    def dict(self) -> Dict[str, Any]:
        """Convert to dictionary, excluding None values."""
        return {key: value for key, value in self.__dict__.items() if value is not None}


class ProtocolError(ValueError):
    """A dict that is not a message of this protocol; the text says why."""


def from_dict(kind: type, data: Any) -> Any:
    """Build the dataclass ``kind`` from a received dict, refusing unknown or missing fields."""
    if not isinstance(data, dict):
        raise ProtocolError(f"a {kind.__name__} must be an object, got {type(data).__name__}")
    names = {field.name for field in dataclasses.fields(kind)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ProtocolError(f"{kind.__name__} has no field(s) {unknown}")
    try:
        return kind(**data)
    except TypeError as error:
        raise ProtocolError(f"bad {kind.__name__}: {error}") from None


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
