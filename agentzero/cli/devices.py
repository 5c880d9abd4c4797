"""``agentzero forwarder|queue|streamer``: ZeroMQ's proxy between two sockets.

``zmq.proxy`` moves every message from the input socket to the output socket
and every message the output socket receives back to the input socket. So the
input must receive, the output must send, and whatever the output receives
(subscriptions, replies) the input must be able to send. Each device belongs to
one messaging pattern; within it only the pairs in :data:`DEVICE_PAIRS` work:

============  ==========================================  =====================================
device        pairs (in -> out)                           why the others cannot work
============  ==========================================  =====================================
forwarder     SUB -> PUB, SUB -> XPUB, XSUB -> XPUB       an XSUB subscribes only to what an
                                                          XPUB passes back, a PUB passes none
queue         ROUTER -> DEALER, DEALER -> DEALER          a ROUTER out sends only to the peer
                                                          named in the first frame
streamer      PULL -> PUSH                                a pipeline flows one way
============  ==========================================  =====================================

Every other pair has a side that cannot do its part (a PUB cannot receive, a
PULL cannot send) or belongs to another pattern than the device's.
"""

from __future__ import annotations

import argparse
import sys
import threading
import uuid
from typing import Any, Callable

import zmq

from agentzero.cli.signals import stop_on_signals
from agentzero.core import SocketManager

#: device -> (default input type, default output type)
DEVICES = {
    "forwarder": ("SUB", "PUB"),
    "queue": ("ROUTER", "DEALER"),
    "streamer": ("PULL", "PUSH"),
}
#: device -> the (input type, output type) pairs that work together
DEVICE_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "forwarder": (("SUB", "PUB"), ("SUB", "XPUB"), ("XSUB", "XPUB")),
    "queue": (("ROUTER", "DEALER"), ("DEALER", "DEALER")),
    "streamer": (("PULL", "PUSH"),),
}
#: the largest high water mark libzmq takes
MAX_HWM = 2**31 - 1
SOCKET_TYPES = ("PUB", "SUB", "XPUB", "XSUB", "PUSH", "PULL", "ROUTER", "DEALER", "PAIR", "REQ", "REP")
_RECEIVES = {"SUB", "XSUB", "XPUB", "PULL", "ROUTER", "DEALER", "PAIR", "REQ", "REP"}
_SENDS = {"PUB", "XPUB", "XSUB", "PUSH", "ROUTER", "DEALER", "PAIR", "REQ", "REP"}
_PAIR_REASONS = {
    ("XSUB", "PUB"): "an XSUB subscribes only to what an XPUB passes back, and a PUB passes nothing",
    ("ROUTER", "ROUTER"): "a ROUTER out sends only to the peer named in the first frame",
    ("DEALER", "ROUTER"): "a ROUTER out sends only to the peer named in the first frame",
}
_PATTERNS = {
    "forwarder": "publish-subscribe",
    "queue": "request-reply",
    "streamer": "pipeline (push-pull)",
}
EXAMPLES = {
    "forwarder": """examples:
  # publishers connect to port 5000, subscribers to port 5001
  agentzero forwarder --bind-in tcp://127.0.0.1:5000 --bind-out tcp://127.0.0.1:5001

  # subscriptions travel upstream, so publishers only send what someone wants
  agentzero forwarder --type-in XSUB --type-out XPUB \\
      --bind-in ipc:///tmp/publishers --bind-out ipc:///tmp/subscribers
""",
    "queue": """examples:
  # REQ clients connect to port 5555, REP workers to port 5556
  agentzero queue --bind-in tcp://127.0.0.1:5555 --bind-out tcp://127.0.0.1:5556

  # queue at most 10000 requests on each side
  agentzero queue --bind-in tcp://127.0.0.1:5555 --bind-out tcp://127.0.0.1:5556 \\
      --hwm-in 10000 --hwm-out 10000
""",
    "streamer": """examples:
  # PUSH producers connect to port 5557, PULL workers to port 5558
  agentzero streamer --bind-in tcp://127.0.0.1:5557 --bind-out tcp://127.0.0.1:5558

  # join a bound producer to bound consumers
  agentzero streamer --connect-in tcp://127.0.0.1:6000 --connect-out tcp://127.0.0.1:6001
""",
}


def add_device_arguments(
    sub: argparse.ArgumentParser, device: str, non_negative: Callable[[str], int]
) -> None:
    """Declare a device's arguments on ``sub``.

    Parameters
    ----------
    sub : argparse.ArgumentParser
        the device sub-command's parser
    device : str
        ``'forwarder'``, ``'queue'`` or ``'streamer'``
    non_negative : callable
        the argument type for high water marks (a whole number >= 0)
    """
    type_in, type_out = DEVICES[device]
    side_in = sub.add_mutually_exclusive_group(required=True)
    side_in.add_argument("--bind-in", metavar="ADDRESS", help="bind the input socket to ADDRESS")
    side_in.add_argument("--connect-in", metavar="ADDRESS", help="connect the input socket to ADDRESS")
    side_out = sub.add_mutually_exclusive_group(required=True)
    side_out.add_argument("--bind-out", metavar="ADDRESS", help="bind the output socket to ADDRESS")
    side_out.add_argument("--connect-out", metavar="ADDRESS", help="connect the output socket to ADDRESS")
    pairs = ", ".join(f"{a} -> {b}" for a, b in DEVICE_PAIRS[device])
    sub.add_argument(
        "--type-in",
        choices=SOCKET_TYPES,
        default=type_in,
        type=str.upper,
        metavar="TYPE",
        help=f"the input socket's type (default: {type_in}; a {device} runs {pairs})",
    )
    sub.add_argument(
        "--type-out",
        choices=SOCKET_TYPES,
        default=type_out,
        type=str.upper,
        metavar="TYPE",
        help=f"the output socket's type (default: {type_out})",
    )
    for side in ("in", "out"):
        sub.add_argument(
            f"--hwm-{side}",
            type=lambda text: _high_water_mark(non_negative(text)),
            default=None,
            metavar="N",
            help=f"the {side}put socket's high water mark, in messages; 0: no limit "
            "(default: ZeroMQ's, 1000)",
        )


def _high_water_mark(value: int) -> int:
    if value > MAX_HWM:  # libzmq keeps it in a C int
        raise argparse.ArgumentTypeError(f"must be <= {MAX_HWM}, got {value}")
    return value


def check_pair(device: str, type_in: str, type_out: str) -> str | None:
    """Say why ``type_in -> type_out`` cannot work as ``device``, or return ``None`` when it can.

    Parameters
    ----------
    device : str
        ``'forwarder'``, ``'queue'`` or ``'streamer'``
    type_in : str
        the input socket's type name, e.g. ``'SUB'``
    type_out : str
        the output socket's type name, e.g. ``'PUB'``

    Returns
    -------
    str or None
        one line naming the problem and the pairs that work, or ``None``.

    >>> check_pair('streamer', 'PULL', 'PUSH') is None
    True
    >>> print(check_pair('streamer', 'PUB', 'PUSH'))
    a streamer cannot run PUB -> PUSH: a PUB socket cannot receive; use PULL -> PUSH
    """
    pairs = DEVICE_PAIRS[device]
    if (type_in, type_out) in pairs:
        return None
    if type_in not in _RECEIVES:
        reason = f"a {type_in} socket cannot receive"
    elif type_out not in _SENDS:
        reason = f"a {type_out} socket cannot send"
    elif (type_in, type_out) in _PAIR_REASONS:
        reason = _PAIR_REASONS[(type_in, type_out)]
    else:
        reason = f"a {device} moves {_PATTERNS[device]} messages"
    works = " or ".join(f"{a} -> {b}" for a, b in pairs)
    return f"a {device} cannot run {type_in} -> {type_out}: {reason}; use {works}"


def run_device(args: argparse.Namespace) -> int:
    """Run a device until Ctrl-C or SIGTERM.

    Two lines go to stderr once both sides are ready: the sockets and their
    addresses, then ``listening on`` with the bound endpoints (a wildcard tcp
    port shows the real one).

    Parameters
    ----------
    args : argparse.Namespace
        the parsed command line

    Returns
    -------
    int
        the exit code: 0 after a signal, 1 when the proxy itself failed.

    Raises
    ------
    ValueError
        when the socket types cannot work together (reported with exit code 2).
    AgentZeroSocketError
        when an address cannot be bound or connected (reported with exit code 2).
    """
    problem = check_pair(args.device, args.type_in, args.type_out)
    if problem is not None:
        raise ValueError(problem)
    stop = threading.Event()
    # from the start: a SIGTERM that comes while the sockets are set up still stops cleanly
    restore_signals = stop_on_signals(stop)
    context = zmq.Context()
    sockets = SocketManager(zmq, context)
    try:
        front = _open_side(sockets, "in", args.type_in, args.bind_in, args.connect_in, args.hwm_in)
        back = _open_side(sockets, "out", args.type_out, args.bind_out, args.connect_out, args.hwm_out)
        control = f"inproc://agentzero-device-{uuid.uuid4().hex}"
        sockets.ensure_and_bind("control-in", zmq.PAIR, control, 0)
        sockets.ensure_and_connect("control-out", zmq.PAIR, control, 0)
        failures: list[BaseException] = []
        # zmq.proxy blocks in C where signals cannot reach it: run it in a thread and
        # steer it from here, where Ctrl-C and SIGTERM arrive.
        proxy = threading.Thread(
            target=_proxy,
            args=(front, back, sockets.sockets["control-in"], failures),
            name="device",
            daemon=True,
        )
        proxy.start()
        device = args.device
        print(f"{device}: {_describe(sockets, 'in')} -> {_describe(sockets, 'out')}", file=sys.stderr)
        bound = [f"{sockets.addresses[side]} ({side})" for side in ("in", "out") if _is_bound(sockets, side)]
        listening = ", ".join(bound) if bound else "no address (both sides connect)"
        print(f"{device}: listening on {listening}", file=sys.stderr, flush=True)
        _wait_for_signal(proxy, stop)
        if proxy.is_alive():
            sockets.sockets["control-out"].send(b"TERMINATE")
            proxy.join(timeout=5)
        if failures:
            print(f"agentzero {device}: error: the proxy stopped: {failures[0]}", file=sys.stderr)
            return 1
        return 0
    finally:
        restore_signals()
        sockets.close_all(linger=0)
        context.term()


def _proxy(front: Any, back: Any, control: Any, failures: list[BaseException]) -> None:
    try:
        zmq.proxy_steerable(front, back, None, control)
    except zmq.ContextTerminated:
        pass
    except zmq.ZMQError as error:
        failures.append(error)


def _open_side(
    sockets: SocketManager, side: str, type_name: str, bind: str | None, connect: str | None, hwm: int | None
) -> Any:
    socket = sockets.create(side, getattr(zmq, type_name))
    if type_name == "ROUTER":  # a reply to a client that left is dropped, as a device does, not fatal
        sockets.set_socket_option(side, zmq.ROUTER_MANDATORY, 0)
    if hwm is not None:
        sockets.set_socket_option(side, zmq.SNDHWM, hwm)
        sockets.set_socket_option(side, zmq.RCVHWM, hwm)
    if type_name == "SUB":
        sockets.set_topic(side, "")
    if bind is not None:
        sockets.bind(side, bind, 0)
    elif connect is not None:
        sockets.connect(side, connect, 0)
    else:  # argparse requires one of --bind-SIDE and --connect-SIDE
        raise ValueError(f"the {side}put socket needs an address to bind or connect")
    return socket


def _is_bound(sockets: SocketManager, side: str) -> bool:
    return bool(sockets.get_record(side).binds)


def _describe(sockets: SocketManager, side: str) -> str:
    record = sockets.get_record(side)
    how = f"bound {record.binds[-1]}" if record.binds else f"connected {record.connects[-1]}"
    return f"{zmq.SocketType(record.socket_type).name} {how}"


def _wait_for_signal(worker: threading.Thread, stop: threading.Event) -> None:
    try:
        while worker.is_alive() and not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
