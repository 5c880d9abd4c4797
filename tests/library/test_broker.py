"""The load-balancing broker of the ZeroMQ guide (chapter 3), its REQ clients and workers in other processes.

The broker runs here, in each flavour, through the ``manager`` fixture: a
ROUTER frontend for the REQ clients and a ROUTER backend for the REQ workers,
which say READY first and then answer one request at a time
(:mod:`tests.library.routing_peers`). Every request must be answered exactly
once.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

ROOT = Path(__file__).resolve().parents[2]
CLIENTS, REQUESTS, WORKERS = 3, 10, 2


def peer(*args: str) -> subprocess.Popen:
    """A client or worker process, importing this checkout's agentzero."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.library.routing_peers", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_broker(manager, requests: int, workers: int, seconds: float) -> int:
    """Route ``requests`` requests to the least recently used worker; then tell each worker to stop.

    Returns how many replies went back to the clients.
    """
    frontend = manager.sockets["frontend"]
    backend = manager.sockets["backend"]
    available: collections.deque[bytes] = collections.deque()
    answered = 0
    deadline = time.monotonic() + seconds
    while (answered < requests or len(available) < workers) and time.monotonic() < deadline:
        # the frontend is polled only while a worker is free, as in the guide
        manager.register_socket(frontend, zmq.POLLIN if available else 0)
        ready = manager.engage(timeout=100)
        if backend in ready:
            worker, empty, *reply = manager.recv_multipart_safe("backend", timeout=0)
            assert empty == b""
            available.append(worker)
            if reply != [b"READY"]:
                assert manager.send_multipart_safe("frontend", reply)
                answered += 1
        if frontend in ready and available:
            client, empty, request = manager.recv_multipart_safe("frontend", timeout=0)
            assert empty == b""
            assert manager.send_multipart_safe("backend", [available.popleft(), b"", client, b"", request])
    for worker in available:
        assert manager.send_multipart_safe("backend", [worker, b"", b"broker", b"", b"null"])
    return answered


@pytest.mark.slow
def test_every_request_is_answered_exactly_once(manager):
    manager.ensure_and_bind("frontend", zmq.ROUTER, "tcp://127.0.0.1:*", zmq.POLLIN)
    manager.ensure_and_bind("backend", zmq.ROUTER, "tcp://127.0.0.1:*", zmq.POLLIN)
    workers = [peer("worker", manager.addresses["backend"], f"worker-{n}") for n in range(WORKERS)]
    clients = [
        peer("client", manager.addresses["frontend"], f"client-{n}", str(REQUESTS)) for n in range(CLIENTS)
    ]
    processes = workers + clients
    try:
        answered = run_broker(manager, CLIENTS * REQUESTS, WORKERS, seconds=40)
        outputs = [process.communicate(timeout=15) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err
    expected = sorted(f"client-{c}-{r}" for c in range(CLIENTS) for r in range(REQUESTS))
    assert answered == len(expected)
    served = [request for out, _ in outputs[:WORKERS] for request in json.loads(out)]
    assert sorted(served) == expected  # each request reached exactly one worker, once
    replies = [reply for out, _ in outputs[WORKERS:] for reply in json.loads(out)]
    assert sorted(reply["id"] for reply in replies) == expected  # and came back to its client, once
    assert {reply["worker"] for reply in replies} <= {f"worker-{n}" for n in range(WORKERS)}
    for number, (out, _) in enumerate(outputs[WORKERS:]):
        assert [reply["id"] for reply in json.loads(out)] == [f"client-{number}-{r}" for r in range(REQUESTS)]
