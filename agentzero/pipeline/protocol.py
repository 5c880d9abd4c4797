"""What travels between the pipeline manager, its step workers and its clients, and how it is checked.

Workers publish events on topics: ``available`` (the heartbeat),
``job:started``, ``job:success``, ``job:failed``, ``job:error``,
``job:refused``, ``metric`` and ``logs``. The manager pushes dispatches to
one worker at a time, and answers requests on its status socket.

Everything a peer sends is hostile until one of the ``check_*`` functions
below accepted it: each returns the values the manager may use, or raises
:class:`BadMessage` saying what is wrong (the manager counts and logs it).
"""

from __future__ import annotations

import math
import re
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import TypeGuard

AVAILABLE = "available"
JOB_STARTED = "job:started"
JOB_SUCCESS = "job:success"
JOB_FAILED = "job:failed"
JOB_ERROR = "job:error"
JOB_REFUSED = "job:refused"
METRIC = "metric"
LOGS = "logs"
JOB_EVENTS = (JOB_STARTED, JOB_SUCCESS, JOB_FAILED, JOB_ERROR, JOB_REFUSED)

#: The states a job goes through; the last two are final.
QUEUED, DISPATCHED, RUNNING, COMPLETED, FAILED = "queued", "dispatched", "running", "completed", "failed"
FINAL_STATES = (COMPLETED, FAILED)

#: The longest job id, worker id or job type accepted, in characters.
MAX_ID_LENGTH = 200
#: The most jobs a worker may say it runs at once.
MAX_CONCURRENCY = 1024
#: The length of a dispatch token (``secrets.token_hex(TOKEN_BYTES)``).
TOKEN_BYTES = 8
#: The status socket's commands.
COMMANDS = ("addresses", "settings", "stats", "status", "submit")
#: The largest event, job or request the manager reads by default, in bytes.
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
#: The most characters of a failure's reason a worker sends (and the manager keeps).
MAX_REASON_CHARS = 2000

_WORKER_ADDRESS = re.compile(r"^tcp://(?P<host>[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")
_TOKEN = re.compile(rf"^[0-9a-f]{{{2 * TOKEN_BYTES}}}$")


class BadJob(ValueError):
    """A submitted job that cannot be accepted; the message says why."""


class BadMessage(ValueError):
    """An event or request that cannot be used; ``kind`` names the problem for the counters.

    Parameters
    ----------
    kind : str
        a short name of the problem, e.g. ``"bad address"``
    detail : str
        what was found
    """

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


def new_job(
    pipeline: str, instructions: dict[str, Any] | None = None, job_id: str | None = None
) -> dict[str, Any]:
    """Build a job to submit: ``{"id", "pipeline", "instructions"}``.

    Parameters
    ----------
    pipeline : str
        the name of the pipeline the job goes through
    instructions : dict, optional
        the data the first step receives
    job_id : str, optional
        defaults to a random hexadecimal id

    Returns
    -------
    dict
        the job, ready for :meth:`~agentzero.core.SocketManager.send_safe`
    """
    return {"id": job_id or uuid.uuid4().hex, "pipeline": pipeline, "instructions": instructions or {}}


def is_clean_text(value: Any, limit: int = MAX_ID_LENGTH) -> TypeGuard[str]:
    """True for printable text of 1 to ``limit`` characters (no lone surrogates, no control characters).

    >>> is_clean_text("job-1"), is_clean_text("\\ud800"), is_clean_text(""), is_clean_text(7)
    (True, False, False, False)
    """
    return type(value) is str and 0 < len(value) <= limit and value.isprintable()


def excerpt(text: str, limit: int) -> str:
    """Return ``text``, or when it is longer than ``limit`` characters, its start and end around a note.

    Lone surrogates become ``\\udXXX`` escapes, so the excerpt can always be sent.

    Parameters
    ----------
    text : str
        a reason or a traceback, of any length
    limit : int
        the most characters returned; at least 100

    Returns
    -------
    str
        at most ``limit`` characters of valid Unicode

    Examples
    --------
    >>> excerpt("short", 100)
    'short'
    >>> cut = excerpt("a" * 150 + "z" * 150, 100)
    >>> len(cut) <= 100, cut[:3], cut[-3:], "characters cut" in cut
    (True, 'aaa', 'zzz', True)
    """
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    note = f"\n[... {len(text)} characters, {{}} characters cut ...]\n"
    kept = limit - len(note.format(len(text)))
    head = kept // 2
    return text[:head] + note.format(len(text) - kept) + text[len(text) - (kept - head) :]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def check_job(job: Any, pipelines: dict[str, list[str]]) -> dict[str, Any]:
    """Return ``job`` if it is well formed for one of ``pipelines``.

    Raises
    ------
    BadJob
        naming what is wrong: not an object, a missing or unprintable id, an
        unknown pipeline, instructions that are not an object.
    """
    if not isinstance(job, dict):
        raise BadJob(f"a job must be an object, got {type(job).__name__}")
    job_id = job.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise BadJob(f"a job needs a non-empty string 'id', got {_short(job_id)}")
    if not is_clean_text(job_id):
        raise BadJob(
            f"a job id is printable text of at most {MAX_ID_LENGTH} characters, got {_short(job_id)}"
        )
    pipeline = job.get("pipeline")
    if not isinstance(pipeline, str) or pipeline not in pipelines:
        raise BadJob(f"unknown pipeline {_short(pipeline)} for job {job_id!r}; known: {sorted(pipelines)}")
    if not isinstance(job.get("instructions", {}), dict):
        raise BadJob(f"'instructions' of job {job_id!r} must be an object")
    return job


def check_available(data: Any, job_types: Any) -> tuple[str, str, str, int, Any, bool]:
    """Check an ``available`` event; return ``(worker_id, job_type, address, concurrency, pid, leaving)``.

    Parameters
    ----------
    data : object
        the event's payload
    job_types : container
        the job types some pipeline of the manager uses

    Raises
    ------
    BadMessage
        for a payload that is not an object, an unprintable worker id, an
        unknown job type, an address that is not ``tcp://HOST:PORT`` with a
        port from 1 to 65535, or a concurrency that is not an integer from 1
        to :data:`MAX_CONCURRENCY` (``Infinity``, ``NaN``, booleans, text...).
    """
    if type(data) is not dict:
        raise BadMessage("malformed event", f"an event is an object, got {type(data).__name__}")
    worker_id = data.get("worker_id")
    if not is_clean_text(worker_id):
        raise BadMessage("bad worker id", _short(worker_id))
    leaving = data.get("leaving", False) is True
    if leaving:
        return worker_id, "", "", 0, None, True
    job_type = data.get("job_type")
    if not is_clean_text(job_type) or job_type not in job_types:
        raise BadMessage("unknown job type", f"worker {worker_id!r} announced {_short(job_type)}")
    address = data.get("address")
    if not isinstance(address, str) or len(address) > 300:
        raise BadMessage("bad address", f"worker {worker_id!r} announced {_short(address)}")
    found = _WORKER_ADDRESS.match(address)
    if found is None or not 1 <= int(found.group("port")) <= 65535:
        raise BadMessage("bad address", f"worker {worker_id!r} announced {_short(address)}")
    concurrency = data.get("concurrency", 1)
    if type(concurrency) is not int or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise BadMessage("bad concurrency", f"worker {worker_id!r} announced {_short(concurrency)}")
    pid = data.get("pid")
    if pid is not None and (type(pid) is not int or not 0 < pid < 2**31):
        raise BadMessage("bad pid", f"worker {worker_id!r} announced {_short(pid)}")
    return worker_id, job_type, address, concurrency, pid, False


def check_job_event(data: Any) -> tuple[str, str, str]:
    """Check the header of a ``job:*`` event; return ``(job_id, token, worker_id)``.

    Raises
    ------
    BadMessage
        for a payload that is not an object, or an id or token of the wrong
        shape (a token is :data:`TOKEN_BYTES` bytes in lowercase hex).
    """
    if type(data) is not dict:
        raise BadMessage("malformed event", f"an event is an object, got {type(data).__name__}")
    job_id, token, worker_id = data.get("job_id"), data.get("token"), data.get("worker_id")
    if not is_clean_text(job_id):
        raise BadMessage("bad job id", _short(job_id))
    if not is_clean_text(worker_id):
        raise BadMessage("bad worker id", _short(worker_id))
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise BadMessage("bad token", _short(token))
    return job_id, token, worker_id


def check_metric(data: Any) -> tuple[str, int]:
    """Check a ``metric`` event; return ``(worker_id, done)``.

    Raises
    ------
    BadMessage
        for a payload that is not an object, an unprintable worker id, or a
        ``done`` count that is not a non-negative integer.
    """
    if type(data) is not dict:
        raise BadMessage("malformed event", f"an event is an object, got {type(data).__name__}")
    worker_id, done = data.get("worker_id"), data.get("done")
    if not is_clean_text(worker_id):
        raise BadMessage("bad worker id", _short(worker_id))
    if type(done) is not int or done < 0:
        raise BadMessage("bad metric", f"worker {worker_id!r} sent done={_short(done)}")
    return worker_id, done


def check_log(data: Any) -> str:
    """Check a ``logs`` event; return its message, cut to 2,000 printable characters.

    Raises
    ------
    BadMessage
        for a payload that is not an object with a text ``msg``.
    """
    message = data.get("msg") if type(data) is dict else None
    if type(message) is not str:
        raise BadMessage("malformed event", f"a log event has a text 'msg', got {_short(data)}")
    return message[:2000].encode("utf-8", "backslashreplace").decode("utf-8")


def check_request(request: Any) -> tuple[str, Any]:
    """Check a status request; return ``(command, argument)``.

    ``argument`` is the job id of ``status`` and the job of ``submit``
    (checked later, like any submitted job), ``None`` otherwise.

    Raises
    ------
    BadMessage
        for a request that is not an object, an unknown command, or a
        ``status`` whose job id is not printable text.
    """
    command = request.get("command") if type(request) is dict else None
    if type(command) is not str or command not in COMMANDS:
        raise BadMessage("unknown request", f"{_short(request)}; commands: {', '.join(COMMANDS)}")
    if command == "status":
        job_id = request.get("job_id")
        if not is_clean_text(job_id):
            raise BadMessage("bad job id", _short(job_id))
        return command, job_id
    if command == "submit":
        return command, request.get("job")
    return command, None


def finite_seconds(name: str, value: Any) -> float:
    """Return ``value`` as seconds if it is a finite, non-negative number.

    Raises
    ------
    ValueError
        naming ``name`` when it is negative, infinite, NaN or not a number.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite, non-negative number of seconds, got {value!r}")
    return float(value)


class Admissions:
    """What a worker knows of its admissions: which dispatches were sent before it was taken in again.

    A link cut for longer than the heartbeat timeout leaves dispatches in its
    TCP buffers that arrive once it heals, possibly after newer dispatches of
    the same jobs ran their next steps (a file generated again after it was
    deleted). The manager stamps each dispatch with its ``session`` (one per
    manager process) and the worker's ``admission``, higher each time it
    takes the worker in (again); a lower admission of the same session is
    outdated.
    """

    def __init__(self) -> None:
        self.session: str | None = None
        self.admission = 0

    def outdated(self, dispatch: dict[str, Any]) -> bool:
        """True for a dispatch sent before the latest admission this worker heard of."""
        session, admission = dispatch.get("session"), dispatch.get("admission")
        if type(session) is not str or type(admission) is not int:
            return False  # a manager that does not stamp its dispatches
        if session != self.session:  # another manager process: it counts afresh
            self.session, self.admission = session, admission
            return False
        if admission < self.admission:
            return True
        self.admission = admission
        return False
