"""Fixtures shared by every test: contexts, managers and addresses on this machine only."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid

import pytest
import zmq
import zmq.green

from agentzero.asyncio import SocketManager as AsyncioSocketManager
from agentzero.core import SocketManager
from tests.blocking_asyncio import ASYNCIO_FLAVOUR, BlockingAsyncioManager

# programs that tests/packaging/test_typing.py hands to mypy; one is wrong on purpose
collect_ignore = ["packaging/typing_programs"]

ZMQ_MODULES = {"plain": zmq, "green": zmq.green, "asyncio": ASYNCIO_FLAVOUR}


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "sync_only(reason): runs with plain zmq and zmq.green only; the reason says why not under asyncio",
    )


def pytest_collection_modifyitems(config, items):
    """Deselect, and report as deselected, the asyncio run of the tests marked ``sync_only``.

    A test parametrized over ``zmq_module`` runs under asyncio through the
    ``manager`` fixture (an asyncio manager behind the sync interface). One
    that cannot (it makes sync managers itself, runs threads or greenlets,
    or uses sockets directly) says why with ``@pytest.mark.sync_only(reason)``;
    one that neither uses ``manager`` nor says why is a collection error.
    """
    kept, deselected = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("zmq_module") != "asyncio":
            kept.append(item)
            continue
        marker = item.get_closest_marker("sync_only")
        if marker is not None:
            if not marker.args or not str(marker.args[0]).strip():
                raise pytest.UsageError(f"{item.nodeid}: sync_only needs a reason")
            deselected.append(item)
        elif "manager" not in item.fixturenames:
            raise pytest.UsageError(
                f"{item.nodeid} runs under asyncio without the manager fixture: "
                "use it, or mark the test sync_only with a reason"
            )
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(params=sorted(ZMQ_MODULES), ids=sorted(ZMQ_MODULES))
def zmq_module(request):
    """Run the test with ``zmq`` and ``zmq.green``, and with the asyncio manager when it uses ``manager``.

    For asyncio, the value has zmq's names with ``zmq.asyncio``'s classes (see :mod:`tests.blocking_asyncio`).
    """
    return ZMQ_MODULES[request.param]


@pytest.fixture
def context(zmq_module):
    ctx = zmq_module.Context()
    yield ctx
    terminate(ctx)


@pytest.fixture
def manager(zmq_module, context):
    if zmq_module is ASYNCIO_FLAVOUR:
        blocking = BlockingAsyncioManager(AsyncioSocketManager(context=context, timeout=5))
        yield blocking
        blocking.shut()
        return
    sockets = SocketManager(zmq_module, context, timeout=5)
    yield sockets
    sockets.close_all(linger=0)


@pytest.fixture
def ipc_dir():
    # ipc paths are limited to ~100 characters: keep them short, under /tmp.
    path = tempfile.mkdtemp(prefix="az-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["inproc", "ipc", "tcp"])
def transport(request):
    return request.param


@pytest.fixture
def address(transport, ipc_dir):
    """A fresh address to bind: tcp uses a wildcard port on loopback."""
    return make_address(transport, ipc_dir)


def make_address(transport: str, ipc_dir: str | None = None) -> str:
    if transport == "inproc":
        return f"inproc://test-{uuid.uuid4().hex}"
    if transport == "ipc":
        directory = ipc_dir or tempfile.gettempdir()
        return f"ipc://{os.path.join(directory, uuid.uuid4().hex[:12])}"
    return "tcp://127.0.0.1:*"


def terminate(ctx, seconds: float = 5.0) -> None:
    """Destroy ``ctx`` with linger 0; fail the test instead of hanging when it does not end."""
    done = threading.Event()

    def destroy():
        ctx.destroy(linger=0)
        done.set()

    threading.Thread(target=destroy, daemon=True).start()
    if not done.wait(seconds):
        pytest.fail(f"context {ctx!r} did not terminate within {seconds}s")


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01):
    """Return predicate()'s first true value, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition {predicate!r} not met within {timeout}s")


def publish_until_received(manager, pub: str, sub: str, topic, data, timeout: float = 5.0):
    """Publish until the subscriber gets an event: the slow-joiner dance of PUB/SUB."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert manager.publish_safe(pub, topic, data)
        event = manager.recv_event_safe(sub, timeout=0.05)
        if event is not None:
            return event
    pytest.fail(f"no event reached {sub!r} within {timeout}s")
