"""The routing calls' types, as a user's type checker sees them in both managers."""

from __future__ import annotations

import inspect
import textwrap

import pytest

import agentzero.asyncio
from agentzero.manager.messaging import Messaging
from tests.packaging.test_typing import _mypy

PROGRAM = """
from __future__ import annotations

import asyncio
from typing import Optional

import zmq

import agentzero.asyncio
from agentzero import PeerUnreachable, Request
from agentzero.core import SocketManager


def serve(sockets: SocketManager) -> None:
    request: Optional[Request] = sockets.recv_request_safe("server", timeout=1.5)
    if request is not None:
        envelope: tuple[bytes, ...] = request.envelope
        try:
            sent: bool = sockets.send_reply_safe("server", envelope, {"ok": True})
        except PeerUnreachable as error:
            identity: bytes = error.identity
    sockets.send_reply_safe("server", [b"peer"], 1, timeout="soon")  # mistake


async def aserve(sockets: agentzero.asyncio.SocketManager) -> None:
    request: Optional[Request] = await sockets.recv_request_safe("server")
    if request is not None:
        sent: bool = await sockets.send_reply_safe("server", request.envelope, request.data)
    sockets.recv_request_safe("server").envelope  # mistake
"""


@pytest.mark.parametrize("name", ["recv_request_safe", "send_reply_safe"])
def test_the_routing_coroutines_have_the_core_calls_signature_and_name(name):
    coroutine = getattr(agentzero.asyncio.SocketManager, name)
    core = getattr(Messaging, name)
    assert inspect.iscoroutinefunction(coroutine)
    assert inspect.signature(coroutine) == inspect.signature(core)
    assert coroutine.__qualname__ == f"SocketManager.{name}"
    assert coroutine.__doc__ == core.__doc__


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mypy_sees_requests_and_replies_in_both_managers(tmp_path):
    program = tmp_path / "source" / "routing_user.py"
    program.parent.mkdir()
    program.write_text(textwrap.dedent(PROGRAM))
    errors = _mypy(program, tmp_path)
    mistakes = {
        number for number, line in enumerate(program.read_text().splitlines(), start=1) if "# mistake" in line
    }
    reported = {int(line.split(":")[1]) for line in errors}
    assert reported == mistakes, errors
