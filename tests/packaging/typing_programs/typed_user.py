from __future__ import annotations

import zmq

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
