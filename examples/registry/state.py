"""What the registry keeps about each worker and each job."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from examples.registry.protocol import JobStatus, WorkerStatus

# the statuses as plain strings: enum member access is measurably slow on the hot path
IDLE, BUSY, OFFLINE, ERROR = (status.value for status in WorkerStatus)
PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = (status.value for status in JobStatus)
FINAL = (COMPLETED, FAILED, CANCELLED)
ASSIGNING = "assigning"  # an availability request is out for the job


@dataclass
class WorkerState:
    worker_id: str
    identity: bytes
    agent_name: str
    load_threshold: float
    max_processes: int
    status: str = IDLE
    draining: bool = False
    load: float = 0.0
    job_count: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    running: set[str] = field(default_factory=set)
    asking: set[str] = field(default_factory=set)
    peak: int = 0
    completed: int = 0
    failed: int = 0

    @property
    def online(self) -> bool:
        return self.status != OFFLINE

    def can_take(self) -> bool:
        """Under its process limit and its load threshold, counting requests in flight."""
        committed = len(self.running) + len(self.asking)
        return (
            self.status in (IDLE, BUSY)
            and not self.draining
            and committed < self.max_processes
            and committed / self.max_processes < self.load_threshold
            and self.load < self.load_threshold
        )


@dataclass
class JobState:
    job_id: str
    job_type: str
    metadata: dict[str, Any]
    status: str = PENDING
    worker_id: Optional[str] = None
    tried: set[str] = field(default_factory=set)
    asked_at: float = 0.0
    requeued: int = 0
    error: Optional[str] = None
    history: list[str] = field(default_factory=list)  # the workers it was assigned to
