"""Creating and closing many sockets costs the same per socket at 1,000 as at 10,000: both are linear."""

from __future__ import annotations

import gc
import resource
import time

import pytest
import zmq

from agentzero.asyncio import SocketManager as AsyncioSocketManager
from agentzero.core import SocketManager

SMALL, LARGE = 1_000, 10_000
#: the per-socket cost at LARGE may be at most this many times the cost at SMALL
RATIO = 1.5


@pytest.fixture
def enough_descriptors():
    """Every ZeroMQ socket holds a descriptor: allow LARGE of them (and give the limit back)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = LARGE + 1_000
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"{LARGE} sockets need {wanted} open files, the hard limit is {hard}")
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (max(soft, wanted) if soft != resource.RLIM_INFINITY else soft, hard)
    )
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def per_socket_costs(manager_class, count: int) -> tuple[float, float]:
    """Seconds per socket to create ``count`` bound sockets with a log handler each, then to ``close_all``.

    Handlers only: ``logging`` itself scans a logger's handlers, and all its
    loggers on ``setLevel``, so loggers by the thousand are not linear anyway.
    """
    context = zmq.Context()
    context.max_sockets = count + 100
    sockets = manager_class(context=context)
    gc.collect()
    # Measured in this thread's CPU time, without Python's full collections: other
    # processes on a shared machine and the size of the whole heap are not agentzero's cost.
    gc.disable()
    try:
        started = time.thread_time()
        for number in range(count):
            sockets.create(number, zmq.PUB)
            sockets.bind(number, f"inproc://scale-{number}", zmq.POLLOUT)
            sockets.get_log_handler(number)
        created = time.thread_time()
        sockets.close_all(linger=0)
        closed = time.thread_time()
    finally:
        gc.enable()
        sockets.close_all(linger=0)
        context.term()
    return (created - started) / count, (closed - created) / count


def best_costs(manager_class, rounds: int) -> dict[int, tuple[float, float]]:
    """The lowest cost of each phase at SMALL and at LARGE, measured in turns (the machine is shared)."""
    costs: dict[int, list[tuple[float, float]]] = {SMALL: [], LARGE: []}
    for _ in range(rounds):
        costs[SMALL].append(per_socket_costs(manager_class, SMALL))
        costs[LARGE].append(per_socket_costs(manager_class, LARGE))
        costs[SMALL].append(per_socket_costs(manager_class, SMALL))
    return {count: (min(c[0] for c in seen), min(c[1] for c in seen)) for count, seen in costs.items()}


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("manager_class", [SocketManager, AsyncioSocketManager], ids=["sync", "asyncio"])
def test_create_and_close_all_are_linear(manager_class, enough_descriptors):
    best = best_costs(manager_class, rounds=3)
    (small_create, small_close), (large_create, large_close) = best[SMALL], best[LARGE]
    report = (
        f"create {small_create * 1e6:.1f} -> {large_create * 1e6:.1f} us/socket, "
        f"close_all {small_close * 1e6:.1f} -> {large_close * 1e6:.1f} us/socket"
    )
    assert large_create <= RATIO * small_create, report
    assert large_close <= RATIO * small_close, report
