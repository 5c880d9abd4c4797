"""REQ clients and REQ workers of the load-balancing broker, run as separate processes by the tests.

``python -m tests.library.routing_peers client ADDRESS NAME COUNT`` sends COUNT
requests ``{'id': 'NAME-i'}`` one after the other and prints, as one JSON line,
the replies it got. ``python -m tests.library.routing_peers worker ADDRESS NAME``
says READY, answers each request with ``{'id': ..., 'worker': NAME}`` until it
receives a ``null`` request, then prints the ids it served as one JSON line.
Both use a plain agentzero SocketManager; a peer that waits longer than
:data:`PATIENCE` seconds gives up with exit code 3.
"""

from __future__ import annotations

import json
import sys

import zmq

from agentzero.core import SocketManager

#: the longest a peer waits for its next message, in seconds
PATIENCE = 30


def client(address: str, name: str, count: int) -> int:
    with SocketManager(zmq, zmq.Context(), timeout=PATIENCE) as sockets:
        sockets.ensure_and_connect(name, zmq.REQ, address, zmq.POLLIN)
        replies = []
        for number in range(count):
            assert sockets.send_safe(name, {"id": f"{name}-{number}"})
            reply = sockets.recv_safe(name)
            if reply is None:
                return 3
            replies.append(reply)
        print(json.dumps(replies), flush=True)
    return 0


def worker(address: str, name: str) -> int:
    served = []
    with SocketManager(zmq, zmq.Context(), timeout=PATIENCE) as sockets:
        sockets.ensure_and_connect(name, zmq.REQ, address, zmq.POLLIN)
        assert sockets.send_multipart_safe(name, [b"READY"])
        while True:
            request = sockets.recv_request_safe(name)
            if request is None:
                return 3
            if request.data is None:  # the broker's "no more work"
                break
            served.append(request.data["id"])
            assert sockets.send_reply_safe(name, request.envelope, {"id": request.data["id"], "worker": name})
        print(json.dumps(served), flush=True)
    return 0


def main(argv: list[str]) -> int:
    role, address, name, *rest = argv
    if role == "client":
        return client(address, name, int(rest[0]))
    return worker(address, name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
