"""Workers the tests drive by hand: real sockets in this process, every message sent when the test says.

A :class:`HandWorker` binds a PULL and publishes on a PUB exactly like
:class:`~agentzero.pipeline.worker.StepWorker`, but runs nothing by itself,
so a test can replay a race step by step.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
import zmq.green

from agentzero.core import SocketManager
from agentzero.pipeline.manager import PipelineManager
from agentzero.zero import context as green_context


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    """Return predicate()'s first true value, yielding to the manager's greenlet; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        gevent.sleep(0.01)


class HandWorker:
    """A worker whose every event is sent by the test."""

    def __init__(self, manager: PipelineManager, job_type: str, worker_id: str, concurrency: int = 1) -> None:
        self.manager = manager
        self.job_type = job_type
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.sockets = SocketManager(zmq.green, green_context)
        self.sockets.create("jobs", zmq.green.PULL)
        _, self.address = self.sockets.bind_to_random_port("jobs", zmq.green.POLLIN, "tcp://127.0.0.1")
        self.sockets.ensure_and_connect("events", zmq.green.PUB, manager.addresses["events"], 0)

    def announce(self, timeout: float = 10.0) -> HandWorker:
        """Publish ``available`` until the manager took this worker in."""

        def joined():
            self.beat()
            gevent.sleep(0.02)
            return self.worker_id in self.manager.workers

        wait_until(joined, timeout, f"{self.worker_id} joining")
        return self

    def beat(self, **changes: Any) -> None:
        event = {
            "worker_id": self.worker_id,
            "job_type": self.job_type,
            "address": self.address,
            "concurrency": self.concurrency,
            "pid": 4242,
            "leaving": False,
            **changes,
        }
        self.sockets.publish_safe("events", "available", event)

    def take(self, timeout: float = 5.0) -> dict | None:
        """The next dispatch this worker received, or None."""
        return self.sockets.recv_safe("jobs", timeout=timeout)

    def report(self, topic: str, dispatch: dict, **fields: Any) -> None:
        header = {
            "job_id": dispatch["job_id"],
            "token": dispatch["token"],
            "worker_id": self.worker_id,
            "job_type": self.job_type,
        }
        self.sockets.publish_safe("events", topic, {**header, **fields})

    def crash(self) -> None:
        """Close the sockets at once: to the manager this looks like a killed process."""
        self.sockets.close_all(linger=0)

    def close(self) -> None:
        self.sockets.close_all(linger=0)


def start_manager(**options: Any) -> PipelineManager:
    manager = PipelineManager(**options)
    manager.start()
    return manager
