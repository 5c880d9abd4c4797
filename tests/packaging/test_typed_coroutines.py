"""The asyncio manager's coroutines carry the core calls' types, and are named as the manager's methods."""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

import pytest
import zmq

import agentzero.asyncio
from agentzero.manager.messaging import Messaging
from agentzero.manager.waits import Waits
from tests.packaging.test_typing import PROGRAMS, _mypy

COROUTINES = [
    "send_safe",
    "recv_safe",
    "publish_safe",
    "recv_event_safe",
    "send_multipart_safe",
    "recv_multipart_safe",
    "wait_until_ready",
    "ready",
    "engage",
]
#: the classes the managers are assembled from, which a user never imports
INTERNAL = ("Messaging", "Multipart", "Waits", "CoroutineCalls", "Sockets", "Addresses")


@pytest.mark.parametrize("name", COROUTINES)
def test_each_coroutine_has_the_core_calls_signature_and_is_named_as_the_managers(name):
    coroutine = getattr(agentzero.asyncio.SocketManager, name)
    core = getattr(Messaging, name, None) or getattr(Waits, name)
    assert inspect.iscoroutinefunction(coroutine)
    assert inspect.signature(coroutine) == inspect.signature(core)
    assert coroutine.__qualname__ == f"SocketManager.{name}"
    assert coroutine.__doc__ == core.__doc__


def test_a_coroutine_never_awaited_is_reported_under_the_managers_name():
    sockets = agentzero.asyncio.SocketManager(context=zmq.Context())
    try:
        sockets.create("in", zmq.PULL)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pending = sockets.recv_safe("in", timeout=0)
            assert "SocketManager.recv_safe" in repr(pending)
            del pending
        messages = [str(warning.message) for warning in caught]
        assert any("SocketManager.recv_safe" in message for message in messages), messages
        assert not any("Messaging" in message for message in messages), messages
    finally:
        sockets.close_all(linger=0)
        sockets.context.term()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mypy_catches_mistaken_coroutine_calls_without_naming_an_internal_class(tmp_path):
    program = PROGRAMS / "ordinary_mistakes.py"
    errors = _mypy(program, tmp_path)
    mistakes = {
        number
        for number, line in enumerate(Path(program).read_text().splitlines(), start=1)
        if line.endswith("# mistake")
    }
    reported = {int(re.match(r"[^:]+:(\d+):", line).group(1)) for line in errors}
    assert mistakes == reported, (sorted(mistakes ^ reported), errors)
    for line in errors:
        for internal in INTERNAL:
            assert f'"{internal}"' not in line, line
