"""The ``agentzero`` command line: ZeroMQ devices, a log tail, CURVE keys and a version.

    agentzero streamer --bind-in tcp://127.0.0.1:5000 --bind-out tcp://127.0.0.1:5001
    agentzero tail tcp://127.0.0.1:6000 --topic logs

Bad arguments and unusable addresses exit with code 2 and one line on stderr;
Ctrl-C (or SIGTERM) closes the sockets and exits with code 0.
"""

from __future__ import annotations

import argparse
import datetime
import signal
import sys
import threading
import uuid
from typing import Any, Sequence

import orjson
import zmq

from agentzero.core import SocketManager
from agentzero.errors import AgentZeroSocketError, DeserializationError
from agentzero.version import version

#: device -> (default input type, default output type)
DEVICES = {
    "forwarder": ("SUB", "PUB"),
    "queue": ("ROUTER", "DEALER"),
    "streamer": ("PULL", "PUSH"),
}
SOCKET_TYPES = ("PUB", "SUB", "XPUB", "XSUB", "PUSH", "PULL", "ROUTER", "DEALER", "PAIR")
LEVEL_COLOURS = {10: "\033[2m", 20: "\033[32m", 30: "\033[33m", 40: "\033[31m", 50: "\033[1;31m"}
RESET = "\033[0m"


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        raise UsageError(f"{self.prog}: error: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="agentzero", description="ZeroMQ devices and tools built on agentzero.")
    parser.add_argument("--version", action="version", version=f"agentzero {version}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for device, (type_in, type_out) in DEVICES.items():
        sub = commands.add_parser(
            device,
            help=f"run a {device} device ({type_in} in, {type_out} out)",
            description=f"Move every message from the input socket to the output socket "
            f"(defaults: {type_in} in, {type_out} out). Each side binds or connects.",
        )
        side_in = sub.add_mutually_exclusive_group(required=True)
        side_in.add_argument("--bind-in", metavar="ADDRESS")
        side_in.add_argument("--connect-in", metavar="ADDRESS")
        side_out = sub.add_mutually_exclusive_group(required=True)
        side_out.add_argument("--bind-out", metavar="ADDRESS")
        side_out.add_argument("--connect-out", metavar="ADDRESS")
        sub.add_argument("--type-in", choices=SOCKET_TYPES, default=type_in, type=str.upper)
        sub.add_argument("--type-out", choices=SOCKET_TYPES, default=type_out, type=str.upper)
        sub.add_argument("--hwm-in", type=_non_negative_int, default=None, metavar="N")
        sub.add_argument("--hwm-out", type=_non_negative_int, default=None, metavar="N")
        sub.set_defaults(run=run_device, device=device)

    tail = commands.add_parser(
        "tail",
        help="print the events a PUB socket publishes (log records readably)",
        description="Subscribe to ADDRESS and print each event as it arrives.",
    )
    tail.add_argument("address", help="the PUB socket to listen to, e.g. tcp://127.0.0.1:6000")
    tail.add_argument(
        "--topic", action="append", default=None, help="topic prefix (repeatable; default: all)"
    )
    tail.add_argument("--bind", action="store_true", help="bind ADDRESS instead of connecting to it")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--count", type=_non_negative_int, default=0, help="stop after N events (0: never)")
    tail.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    tail.set_defaults(run=run_tail)

    keys = commands.add_parser(
        "keys",
        help="write a CURVE key pair (NAME.key and NAME.key_secret)",
        description="Write a new CURVE key pair into DIRECTORY and print the public key.",
    )
    keys.add_argument("directory", help="where to write the key files (created if missing)")
    keys.add_argument("--name", default="agentzero", help="file name stem (default: agentzero)")
    keys.set_defaults(run=run_keys)
    return parser


def run_keys(args: argparse.Namespace) -> int:
    from agentzero.util import load_curve_keypair, write_curve_keypair

    if not args.name or "/" in args.name or args.name.startswith("."):
        raise UsageError(f"agentzero keys: error: invalid key name {args.name!r}")
    try:
        public_path, secret_path = write_curve_keypair(args.directory, args.name)
    except OSError as error:
        raise UsageError(
            f"agentzero keys: error: cannot write keys into {args.directory!r}: {error.strerror}"
        ) from None
    public, _ = load_curve_keypair(public_path)
    print(f"public key  {public_path}")
    print(f"secret key  {secret_path}")
    print(public.decode("ascii"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as problem:
        print(problem, file=sys.stderr)
        return 2
    except AgentZeroSocketError as problem:
        print(f"agentzero: error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


# -- devices ---------------------------------------------------------------------------------


def run_device(args: argparse.Namespace) -> int:
    context = zmq.Context()
    sockets = SocketManager(zmq, context)
    try:
        front = _open_side(sockets, "in", args.type_in, args.bind_in, args.connect_in, args.hwm_in)
        back = _open_side(sockets, "out", args.type_out, args.bind_out, args.connect_out, args.hwm_out)
        control = f"inproc://agentzero-device-{uuid.uuid4().hex}"
        sockets.ensure_and_bind("control-in", zmq.PAIR, control, 0)
        sockets.ensure_and_connect("control-out", zmq.PAIR, control, 0)
        print(f"{args.device}: {_describe(sockets, 'in')} -> {_describe(sockets, 'out')}", file=sys.stderr)
        sys.stderr.flush()
        # zmq.proxy blocks in C where signals cannot reach it: run it in a thread and
        # steer it from here, where Ctrl-C and SIGTERM arrive.
        proxy = threading.Thread(
            target=_proxy, args=(front, back, sockets.sockets["control-in"]), name="device", daemon=True
        )
        proxy.start()
        _wait_for_signal(proxy)
        if proxy.is_alive():
            sockets.sockets["control-out"].send(b"TERMINATE")
            proxy.join(timeout=5)
        return 0
    finally:
        sockets.close_all(linger=0)
        context.term()


def _proxy(front: Any, back: Any, control: Any) -> None:
    try:
        zmq.proxy_steerable(front, back, None, control)
    except zmq.ContextTerminated:
        pass


def _open_side(
    sockets: SocketManager, side: str, type_name: str, bind: str | None, connect: str | None, hwm: int | None
) -> Any:
    socket = sockets.create(side, getattr(zmq, type_name))
    if hwm is not None:
        sockets.set_socket_option(side, zmq.HWM, hwm)
    if type_name == "SUB":
        sockets.set_topic(side, "")
    if bind is not None:
        sockets.bind(side, bind, 0)
    else:
        sockets.connect(side, connect, 0)
    return socket


def _describe(sockets: SocketManager, side: str) -> str:
    record = sockets.get_record(side)
    how = f"bound {record.binds[-1]}" if record.binds else f"connected {record.connects[-1]}"
    return f"{zmq.SocketType(record.socket_type).name} {how}"


def _wait_for_signal(worker: threading.Thread) -> None:
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        while worker.is_alive() and not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- tail --------------------------------------------------------------------------------------


def run_tail(args: argparse.Namespace) -> int:
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    context = zmq.Context()
    sockets = SocketManager(zmq, context)
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    try:
        sockets.create("tail", zmq.SUB)
        if args.bind:
            sockets.bind("tail", args.address, zmq.POLLIN)
        else:
            sockets.connect("tail", args.address, zmq.POLLIN)
        for topic in args.topic or [""]:
            sockets.set_topic("tail", topic)
        printed = 0
        while not stopping.is_set():
            try:
                event = sockets.recv_event_safe("tail", timeout=0.2)
            except DeserializationError as error:
                print(f"agentzero tail: skipped an unreadable event: {error}", file=sys.stderr)
                continue
            if event is None:
                continue
            print(format_event(event.topic, event.data, as_json=args.json, colour=colour), flush=True)
            printed += 1
            if args.count and printed >= args.count:
                break
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        sockets.close_all(linger=0)
        context.term()


def format_event(topic: bytes, data: Any, as_json: bool = False, colour: bool = False) -> str:
    """Render one event: a log record as a log line, anything else as ``topic  json``.

    >>> format_event(b'logs', {'msg': 'Server is up!', 'args': [], 'level': 20})
    'INFO     logs  Server is up!'
    >>> format_event(b'job:success', {'id': 1})
    'job:success  {"id":1}'
    >>> format_event(b'metric', [1, 2], as_json=True)
    '{"topic":"metric","data":[1,2]}'
    """
    name = topic.decode("utf-8", "replace")
    if as_json:
        return orjson.dumps({"topic": name, "data": data}, default=str).decode()
    if _is_log_record(data):
        level = int(data["level"])
        level_name = _level_name(level)
        line = f"{level_name:8s} {name}  {data['msg']}"
        if colour:
            stamp = datetime.datetime.now().strftime("%H:%M:%S")
            return f"{LEVEL_COLOURS.get(level - level % 10, '')}{stamp} {line}{RESET}"
        return line
    return f"{name}  {orjson.dumps(data, default=str).decode()}"


def _is_log_record(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("msg"), str) and isinstance(data.get("level"), int)


def _level_name(level: int) -> str:
    import logging

    return logging.getLevelName(level) if isinstance(logging.getLevelName(level), str) else str(level)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
