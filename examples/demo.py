"""A small tour of agentzero under gevent: a PUSH/PULL pipe and a PUB/SUB log stream.

Run it with ``python -m examples.demo``.
"""

from __future__ import annotations

import logging

import gevent

from agentzero.core import SocketManager
from agentzero.zero import context, zmq


def main() -> int:
    with SocketManager(zmq, context) as sockets:
        # a work pipe: the PULL binds on a random loopback port, the PUSH connects to it
        sockets.create("jobs-in", zmq.PULL)
        _, address = sockets.bind_to_random_port("jobs-in", zmq.POLLIN, local_address="tcp://127.0.0.1")
        sockets.ensure_and_connect("jobs-out", zmq.PUSH, address, zmq.POLLOUT)
        # a log stream: a PUB fed by a logging handler, a SUB that listens to it
        sockets.ensure_and_bind("logs", zmq.PUB, "inproc://demo-logs", zmq.POLLOUT)
        sockets.ensure_and_connect("tail", zmq.SUB, "inproc://demo-logs", zmq.POLLIN)
        logger = sockets.get_logger("logs", logger_name="demo.worker")
        print(f"sockets: {sockets!r}")
        print(f"jobs travel over {address}")

        def worker():
            total = 0
            while (job := sockets.recv_safe("jobs-in", timeout=2)) is not None:
                total += job["n"] ** 2
                logger.info("squared %d", job["n"])
                if job.get("last"):
                    break
            return total

        def producer():
            for n in range(10):
                sockets.send_safe("jobs-out", {"n": n, "last": n == 9})
                gevent.sleep(0.01)

        logs = []

        def tail():
            for event in sockets.subscribe("tail", "logs", keep_polling=lambda: len(logs) < 10):
                logs.append(event.data["msg"])

        listener = gevent.spawn(tail)
        gevent.sleep(0.1)  # let the subscription reach the PUB before logging starts
        working = gevent.spawn(worker)
        gevent.spawn(producer)
        total = working.get(timeout=10)
        listener.join(timeout=3)
        print(f"worker: sum of squares 0..9 = {total}")
        print(f"tail: received {len(logs)} log events, first {logs[:1]}, last {logs[-1:]}")
        ok = total == sum(n * n for n in range(10)) and len(logs) == 10
        print("demo OK" if ok else "demo FAILED")
        logging.getLogger("demo.worker").handlers.clear()
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
