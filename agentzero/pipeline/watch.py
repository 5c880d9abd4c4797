"""What the pipeline manager says while it works: progress lines, and job events anyone may watch.

The manager binds a PUB socket, ``pipe-watch`` (its address is ``watch`` in
the ``addresses`` reply and in the manager's first lines), and publishes on it

- ``job.accepted``, ``job.completed``, ``job.failed`` and ``job.requeued``:
  ``{"job_id", "pipeline", "step", "state"}`` (``error`` too when it failed);
- ``progress``: the counts of the progress line, every ``progress_interval`` seconds.

``agentzero tail tcp://HOST:PORT`` prints them as they come; ``--topic job.failed``
only the failures. A PUB drops what nobody listens to: watching costs nothing
when no one watches, and a slow watcher never holds the manager back.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

from agentzero.core import SocketManager
from agentzero.pipeline.protocol import COMPLETED, DISPATCHED, FAILED, QUEUED, RUNNING
from agentzero.pipeline.records import JobRecord

log = logging.getLogger("pipeline.manager")

#: The socket ``agentzero tail`` can watch.
WATCH = "pipe-watch"


class Watch:
    """The progress half of :class:`~agentzero.pipeline.manager.PipelineManager`."""

    # set by the manager
    sockets: SocketManager
    jobs: dict[str, JobRecord]
    progress_interval: float

    def __init__(self) -> None:
        self._next_progress = 0.0
        self._last_progress: tuple[float, int, tuple[int, ...]] | None = None

    def progress(self) -> dict[str, Any]:
        """Return the counts of the progress line: done, failed, running and queued jobs."""
        states = collections.Counter(job.state for job in self.jobs.values())
        return {
            "done": states[COMPLETED],
            "failed": states[FAILED],
            "running": states[DISPATCHED] + states[RUNNING],
            "queued": states[QUEUED],
        }

    def _watch_event(self, topic: str, job: JobRecord, **extra: Any) -> None:
        if WATCH not in self.sockets.sockets:
            return
        event = {
            "job_id": job.id,
            "pipeline": job.pipeline,
            "step": job.job_type,
            "state": job.state,
            **extra,
        }
        self.sockets.publish_safe(WATCH, topic, event, timeout=0)

    def _maybe_report_progress(self, now: float) -> None:
        """Every ``progress_interval`` seconds, log and publish a progress line while something changes."""
        if now < self._next_progress:
            return
        self._next_progress = now + self.progress_interval
        counts = self.progress()
        finished = counts["done"] + counts["failed"]
        key = (counts["done"], counts["failed"], counts["running"], counts["queued"])
        previous = self._last_progress
        if previous is None:
            self._last_progress = (now, finished, key)
            if not counts["running"] and not counts["queued"]:
                return
            rate = 0.0
        else:
            then, finished_then, key_then = previous
            if key == key_then and not counts["running"] and not counts["queued"]:
                return  # idle: one line said so already
            rate = (finished - finished_then) / (now - then) if now > then else 0.0
            self._last_progress = (now, finished, key)
        counts["jobs_per_second"] = round(rate, 1)
        log.info(
            "progress: %d done, %d failed, %d running, %d queued, %.1f jobs/s",
            counts["done"],
            counts["failed"],
            counts["running"],
            counts["queued"],
            rate,
        )
        if WATCH in self.sockets.sockets:
            self.sockets.publish_safe(WATCH, "progress", counts, timeout=0)
