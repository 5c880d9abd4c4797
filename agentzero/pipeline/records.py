"""What the pipeline manager remembers of each job and each worker."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agentzero.pipeline.protocol import QUEUED


@dataclass
class JobRecord:
    """Everything the manager knows about one job.

    ``token`` is set while the job is dispatched and cleared the moment one
    result of that dispatch is accepted, or the job is queued again: an event
    carrying any other token is stale. ``worker_id`` is the one worker that
    holds the job while it is dispatched.
    """

    id: str
    pipeline: str
    steps: list[str]
    data: Any
    state: str = QUEUED
    step_index: int = 0
    attempts: int = 0  # attempts at the current step
    retries: int = 0  # errors that were retried, over all steps
    redispatches: int = 0  # times it was queued again because its worker was lost
    token: str | None = None
    worker_id: str | None = None
    in_queue: bool = False
    result: Any = None
    error: Any = None
    #: (job type, worker id) of every dispatch, in order
    dispatches: list[tuple[str, str]] = field(default_factory=list)
    #: (job type, worker id) of every accepted result, in order: each step exactly once
    passed: list[tuple[str, str]] = field(default_factory=list)
    submitted_at: float = field(default_factory=time.monotonic)
    dispatched_at: float = 0.0
    finished_at: float | None = None
    #: what makes a re-submission the same job (see :func:`~agentzero.pipeline.desk.job_digest`)
    digest: str = ""

    @property
    def job_type(self) -> str:
        """The step the job is at (the last one once it is final)."""
        return self.steps[min(self.step_index, len(self.steps) - 1)]

    def view(self) -> dict[str, Any]:
        """The job as the status socket reports it."""
        return {
            "job_id": self.id,
            "pipeline": self.pipeline,
            "state": self.state,
            "step": self.job_type,
            "attempts": self.attempts,
            "retries": self.retries,
            "redispatches": self.redispatches,
            "result": self.result,
            "error": self.error,
            "passed": [step for step, _ in self.passed],
        }


@dataclass
class WorkerRecord:
    """A worker that announced itself: where its jobs go and which jobs it holds."""

    id: str
    job_type: str
    address: str
    concurrency: int
    pid: int | None
    last_seen: float
    #: the name of this worker's PUSH socket in the manager's SocketManager
    push: str = ""
    #: the jobs dispatched to this worker whose result has not come yet
    held: set[str] = field(default_factory=set)
    #: the how-manyth worker this manager took in: each taking in (again) a higher one
    admission: int = 0
    done: int = 0

    @property
    def capacity(self) -> int:
        """How many jobs it may hold: its concurrency, plus as many queued so it never idles."""
        return 2 * self.concurrency
