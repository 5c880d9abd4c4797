"""What the registry accepts from a worker: each message type checked in full before any state changes.

:func:`worker_message` turns a decoded frame into a checked protocol message:
declared fields type-checked (:func:`examples.registry.protocol.parse`), unknown
fields ignored and reported, and the values the registry acts on held to their
range (a positive ``max_processes``, a finite ``load``, a known ``status``...).
Anything else raises :class:`ProtocolError` naming the problem.

>>> message, unknown = worker_message({"type": "ping", "timestamp": 5, "note": "newer peer"})
>>> message, unknown
(WorkerPing(type='ping', timestamp=5), ['note'])
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

from examples.registry.checks import ProtocolError
from examples.registry.protocol import (
    AvailabilityResponse,
    JobStatus,
    JobUpdate,
    WorkerMessage,
    WorkerPing,
    WorkerStatus,
    parse,
)

#: ``status_update`` statuses: upstream's worker sends ``available`` and ``draining`` (and
#: ``offline`` when it disconnects); the seed's ``WorkerStatus`` values are accepted too
AVAILABLE = "available"
DRAINING = "draining"
WIRE_STATUSES = frozenset({AVAILABLE, DRAINING} | {status.value for status in WorkerStatus})
#: ``job_update`` statuses: the seed's ``JobStatus``, and ``error`` which upstream's worker
#: sends when a job's entrypoint fails while its session goes on
JOB_STATUSES = frozenset({status.value for status in JobStatus} | {"error"})
#: the most processes a worker may announce
MAX_PROCESSES = 10_000
#: the longest worker id or job id accepted, in characters
MAX_ID = 128


def _id(name: str, value: Any, required: bool = True) -> None:
    if value is None or value == "":
        if required:
            raise ProtocolError(f"{name} is missing")
        return
    if len(value) > MAX_ID:
        raise ProtocolError(f"{name} is longer than {MAX_ID} characters")


def _register(message: WorkerMessage) -> None:
    if message.token is None:
        raise ProtocolError("register.token is missing")
    _id("register.worker_id", message.worker_id, required=False)
    if message.max_processes is not None and not 1 <= message.max_processes <= MAX_PROCESSES:
        raise ProtocolError(
            f"register.max_processes must be in 1..{MAX_PROCESSES}, got {message.max_processes}"
        )
    if message.load_threshold is not None and not 0 < message.load_threshold <= 1:
        raise ProtocolError(f"register.load_threshold must be in (0, 1], got {message.load_threshold}")


def _status_update(message: WorkerMessage) -> None:
    if message.status not in WIRE_STATUSES:
        raise ProtocolError(
            f"status_update.status must be one of {sorted(WIRE_STATUSES)}, got {message.status!r}"
        )
    if message.load is not None and message.load < 0:
        raise ProtocolError(f"status_update.load must not be negative, got {message.load}")
    if message.job_count is not None and message.job_count < 0:
        raise ProtocolError(f"status_update.job_count must not be negative, got {message.job_count}")


def _availability_response(message: AvailabilityResponse) -> None:
    _id("availability_response.job_id", message.job_id)


def _job_update(message: JobUpdate) -> None:
    _id("job_update.job_id", message.job_id)
    if message.status not in JOB_STATUSES:
        raise ProtocolError(
            f"job_update.status must be one of {sorted(JOB_STATUSES)}, got {message.status!r}"
        )


def _nothing(message: Any) -> None:
    pass


_KINDS: Dict[str, Tuple[type, Callable[[Any], None]]] = {
    "register": (WorkerMessage, _register),
    "ping": (WorkerPing, _nothing),
    "status_update": (WorkerMessage, _status_update),
    "availability_response": (AvailabilityResponse, _availability_response),
    "job_update": (JobUpdate, _job_update),
}
KINDS = frozenset(_KINDS)


def worker_message(data: dict) -> Tuple[Any, List[str]]:
    """Check a message a worker sent to the registry.

    Parameters
    ----------
    data : dict
        a decoded frame (a JSON object with a string ``type``)

    Returns
    -------
    tuple
        ``(message, unknown)``: the protocol dataclass, and the names of the ignored fields

    Raises
    ------
    ProtocolError
        when the type is not one a worker sends, or a field is missing, mistyped or out of range.
    """
    kind = data.get("type")
    entry = _KINDS.get(kind)  # type: ignore[arg-type]
    if entry is None:
        raise ProtocolError(f"unknown message type {kind!r:.40}")
    cls, check = entry
    message, unknown = parse(cls, data)
    check(message)
    return message, unknown
