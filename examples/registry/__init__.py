"""A registry that dispatches jobs to agent workers (the protocol of seed 002), on agentzero.

The registry binds one ROUTER; each worker's :class:`BackendConnection` is a
DEALER connected to it. Workers register with a token, keep the link alive with
ping/pong, answer availability requests, run assignments, report job updates
and load, and reconnect with back-off when the registry goes away::

    worker [backend DEALER] <--> [registry ROUTER] registry

Run ``python -m examples.registry --help``.
"""

from examples.registry.connection import BackendConnection
from examples.registry.registry import Registry
from examples.registry.worker import WorkerRuntime, sleep_job

__all__ = ["BackendConnection", "Registry", "WorkerRuntime", "sleep_job"]
