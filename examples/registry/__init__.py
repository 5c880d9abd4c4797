"""A registry that dispatches jobs to agent workers (the protocol of seed 002), on agentzero.

The registry binds one ROUTER; each worker's :class:`BackendConnection` is a
DEALER connected to it. Workers register with a token, keep the link alive with
ping/pong, answer availability requests, run assignments, report job updates
and load, and reconnect with back-off when the registry goes away::

    worker [backend DEALER] <--> [registry ROUTER] registry

Every frame from a peer is hostile until checked, at both ends: strict JSON of
bounded size (:mod:`~examples.registry.frames`), declared fields type-checked
and unknown ones ignored (:mod:`~examples.registry.checks`,
:func:`~examples.registry.protocol.parse`), and at the registry each message
held to its range before it touches any state (:mod:`~examples.registry.inbound`).
A bad message is counted and logged once (the log rate-limited); it never
stops a loop or changes another worker's state, and what a peer can make the
registry keep is bounded (workers, finished jobs).

=====================  ====================================================
``protocol``           seed 002's dataclasses and enums, ``parse``
``checks``             field type checks (finite numbers, no lone surrogates)
``frames``             strict JSON frames, the ROUTER's bounded reads
``inbound``            what the registry accepts from a worker
``state``              the registry's record of each worker and job
``roster``             the registry's workers, one a connection, bounded
``jobs``               dispatch, re-queues, finished jobs pruned
``throttle``           rate-limited log lines about peers
``registry``           the ROUTER side: authentication, the loop, the bounds
``connection``         the worker's DEALER side: the seed's ``BackendConnection``
``worker``             runs jobs, answers availability, reports status
=====================  ====================================================

Run ``python -m examples.registry --help``.
"""

from examples.registry.connection import BackendConnection
from examples.registry.registry import Registry
from examples.registry.worker import WorkerRuntime, sleep_job

__all__ = ["BackendConnection", "Registry", "WorkerRuntime", "sleep_job"]
