from __future__ import annotations

import asyncio
from collections import OrderedDict

import zmq
import zmq.asyncio

import agentzero
import agentzero.asyncio
from agentzero.core import Event, SocketManager
from agentzero.errors import AgentZeroSocketError, DeserializationError


def main() -> None:
    with SocketManager(zmq, zmq.Context(), timeout=1.5) as sockets:
        server: zmq.Socket[bytes] = sockets.ensure_and_bind("in", zmq.PULL, "inproc://typed", zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq.PUSH, "inproc://typed", zmq.POLLOUT)
        sent: bool = sockets.send_safe("out", {"n": 1}, timeout=0.5, polling_timeout=100)
        try:
            received: object = sockets.recv_safe("in", 1.0, 100)
        except DeserializationError as error:
            raw: object = error.raw
            print(raw)
        except AgentZeroSocketError:
            raise
        event: Event | None = sockets.recv_event_safe("in", timeout=0.1)
        if event is not None:
            topic: bytes = event.topic
            print(topic, event.data)
        print(sent, received, server)


def sync_manager() -> None:
    """Ordinary use of the sync manager: sockets are pyzmq sockets, names are text."""
    context = zmq.Context()
    sockets = agentzero.SocketManager(zmq, context)
    pull: zmq.Socket[bytes] = sockets.create("in", zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 10)
    bound: zmq.Socket[bytes] = sockets.bind("in", "inproc://typed-sync", zmq.POLLIN)
    push = sockets.ensure_and_connect("out", zmq.PUSH, "inproc://typed-sync", zmq.POLLOUT)
    push.setsockopt(zmq.SNDHWM, 10)
    api, address = sockets.bind_to_random_port("in", zmq.POLLIN, local_address="tcp://127.0.0.1")
    port: str = address.rsplit(":", 1)[1]
    assert sockets.send_safe("out", [1, 2, 3], timeout=1) is True
    ready: OrderedDict[zmq.Socket[bytes], int] = sockets.engage(timeout=100)
    for socket, events in ready.items():
        if socket is sockets.get_by_name("in") and events & zmq.POLLIN:
            print(sockets.recv_safe("in", timeout=0))
    sent: bool = sockets.send_multipart_safe("out", [b"a", b"b"], timeout=1)
    frames: list[bytes] | None = sockets.recv_multipart_safe("in", timeout=1)
    if frames is not None:
        first: bytes = frames[0]
        print(first)
    writable: zmq.Socket[bytes] | None = sockets.ready("out", zmq.POLLOUT, timeout=10)
    waited = sockets.wait_until_ready("in", zmq.POLLIN, timeout=0.1)
    if waited is not None:
        waited.getsockopt(zmq.EVENTS)
    try:
        sockets.send_safe("in", "a PULL cannot send")
    except agentzero.WrongSocketType as error:
        print(error.socket_name, error.actual, error.can)
    except agentzero.SocketClosed:
        pass
    print(bound, api, port, sent, writable)
    sockets.close_all(linger=0)
    context.term()


async def asyncio_manager() -> None:
    """Ordinary use of the asyncio manager: the same calls, awaited where they wait."""
    context = zmq.asyncio.Context()
    async with agentzero.asyncio.SocketManager(context=context, timeout=2) as sockets:
        pull: zmq.Socket[object] = sockets.create("in", zmq.PULL)
        sockets.bind("in", "inproc://typed-asyncio", zmq.POLLIN)
        sockets.ensure_and_connect("out", zmq.PUSH, "inproc://typed-asyncio", zmq.POLLOUT)
        sent: bool = await sockets.send_safe("out", {"n": 1}, timeout=1)
        received: object = await sockets.recv_safe("in", timeout=1)
        ready = await sockets.engage(timeout=100)
        for socket, events in ready.items():
            print(socket.getsockopt(zmq.TYPE), events)
        more: bool = await sockets.send_multipart_safe("out", [b"a", b"b"], timeout=1)
        frames: list[bytes] | None = await sockets.recv_multipart_safe("in", timeout=1)
        readable = await sockets.ready("in", zmq.POLLIN, timeout=10)
        waited = await sockets.wait_until_ready("in", zmq.POLLIN, timeout=0.1)
        event: Event | None = await sockets.recv_event_safe("in", timeout=0.01)
        print(pull, sent, received, more, frames, readable, waited, event)
    with agentzero.asyncio.SocketManager(context=context) as subscriber:
        subscriber.ensure_and_connect("tail", zmq.SUB, "inproc://typed-events", zmq.POLLIN)
        async for topic, data in subscriber.subscribe("tail", "logs", keep_polling=lambda: False):
            print(topic.decode(), data)
    context.term()


if __name__ == "__main__":
    main()
    sync_manager()
    asyncio.run(asyncio_manager())
