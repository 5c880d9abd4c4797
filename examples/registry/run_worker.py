"""Run one agent worker process.

python -m examples.registry.run_worker --registry tcp://127.0.0.1:PORT --token TOKEN --agent-name NAME
"""

from __future__ import annotations

import argparse
import signal
import sys

import gevent
import gevent.event

from examples.registry.connection import BackendConnection
from examples.registry.worker import STATUS_INTERVAL, WorkerRuntime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.registry.run_worker")
    parser.add_argument("--registry", required=True, help="the registry's address, tcp://HOST:PORT")
    parser.add_argument("--token", required=True)
    parser.add_argument("--agent-name", default="agent")
    parser.add_argument("--max-processes", type=int, default=4)
    parser.add_argument("--load-threshold", type=float, default=0.75)
    parser.add_argument("--max-retry", type=int, default=16)
    parser.add_argument("--ping-interval", type=float, default=0.5, help="seconds between pings")
    parser.add_argument("--pong-timeout", type=float, default=3.0, help="reconnect after this long unheard")
    parser.add_argument(
        "--status-interval", type=float, default=STATUS_INTERVAL, help="periodic status_update"
    )
    args = parser.parse_args(argv)
    for name in ("ping_interval", "pong_timeout", "status_interval"):
        value = getattr(args, name)
        if not 0 < value < float("inf"):
            parser.error(
                f"--{name.replace('_', '-')} must be a finite positive number of seconds, got {value}"
            )
    connection = BackendConnection(
        args.token,
        agent_id=args.agent_name,
        backend_url=args.registry,
        max_processes=args.max_processes,
        load_threshold=args.load_threshold,
        max_retry=args.max_retry,
        ping_interval=args.ping_interval,
        pong_timeout=args.pong_timeout,
    )
    runtime = WorkerRuntime(connection, status_interval=args.status_interval)
    done = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, done.set)
    gevent.signal_handler(signal.SIGINT, done.set)
    connection.connect()
    while not done.wait(0.5):
        if connection.error is not None:
            print(f"run_worker: error: {connection.error}", file=sys.stderr)
            return 2
    runtime.stop()
    connection.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
