"""``agentzero tail``: print what a PUB socket publishes, safely.

Every event comes from a peer and is hostile until shown otherwise: it may be
nested deeper than any encoder allows, hold lone surrogates, not be JSON at all,
be huge or be a multipart message of any shape. Tail prints what it can read,
skips (with one line on stderr) what it cannot, and never stops for either.

Nothing from the wire reaches the terminal raw: control characters (ESC, CR,
BEL, DEL, the C1 range with CSI), lone surrogates and the Unicode controls that
reorder or break lines are printed escaped (``\\x1b``, ``\\r``, ``\\u202e``), so a
publisher can neither move the cursor, clear the screen, write the clipboard
with OSC 52 nor forge the lines around its own.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import math
import os
import re
import sys
import threading
from typing import Any, Callable

import zmq

from agentzero.cli.signals import stop_on_signals
from agentzero.core import SocketManager
from agentzero.errors import DeserializationError, MessageTooLarge
from agentzero.serializers import JSON, MSGPACK, BaseSerializer

#: ``--serializer`` name -> serializer class
SERIALIZERS: dict[str, type[BaseSerializer]] = {"json": JSON, "msgpack": MSGPACK}
#: the largest ``--max-size``: libzmq's ``MAXMSGSIZE`` is a signed 64-bit int
MAX_SIZE = 2**63 - 1
#: the default ``--max-size``, in bytes
DEFAULT_MAX_SIZE = 1024 * 1024
#: containers nested deeper than this are shown as :data:`TOO_DEEP`
MAX_DEPTH = 64
TOO_DEEP = "<nested too deep>"
LEVEL_COLOURS = {10: "\033[2m", 20: "\033[32m", 30: "\033[33m", 40: "\033[31m", 50: "\033[1;31m"}
RESET = "\033[0m"
#: a log message naming its level within this many first characters is printed without tail's level
LEVEL_NAMED_WITHIN = 100

# C0 and C1 controls, DEL, lone surrogates, and the invisible characters that
# reorder text or break lines (bidi embeddings, overrides and isolates, LS, PS).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# inside a JSON string the quote and the backslash are escaped as well
_JSON_UNSAFE = re.compile(_UNSAFE.pattern[:-1] + '"\\\\]')
_JSON_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def escape_text(text: str) -> str:
    """Return ``text`` with every character a terminal would obey shown escaped.

    Parameters
    ----------
    text : str
        text from the wire, possibly with control characters or lone surrogates

    Returns
    -------
    str
        printable text: ``\\n``, ``\\r`` and ``\\t`` as such, other characters
        below U+0100 as ``\\xNN``, the rest as ``\\uNNNN``.

    >>> escape_text('ok \\x1b]52;c;aGk=\\x07 \\r\\ud800')
    'ok \\\\x1b]52;c;aGk=\\\\x07 \\\\r\\\\ud800'
    """
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escape_one(match: re.Match[str]) -> str:
    char = match.group()
    return _JSON_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def json_string(text: str) -> str:
    """Quote ``text`` as a JSON string that is safe to print.

    Parameters
    ----------
    text : str
        any text, lone surrogates included

    Returns
    -------
    str
        a JSON string literal; unsafe characters as ``\\uNNNN`` escapes.

    >>> print(json_string('say "hi"\\x1b[2J'))
    "say \\"hi\\"\\u001b[2J"
    """
    return '"' + _JSON_UNSAFE.sub(_json_escape_one, text) + '"'


def render(data: Any, depth: int = 0) -> str:
    """Render decoded event data as one line of JSON that is safe to print.

    Unlike an encoder, this never fails: containers deeper than
    :data:`MAX_DEPTH` become ``"<nested too deep>"``, bytes and other values
    JSON lacks become strings (``str()``, as agentzero's JSON serializer does;
    a ``memoryview`` as its bytes),
    non-finite floats are written ``NaN``, ``Infinity`` and ``-Infinity`` as
    Python's :mod:`json` does.

    Parameters
    ----------
    data : object
        what a serializer decoded
    depth : int
        the nesting level of ``data`` (for the recursion)

    Returns
    -------
    str
        one line of text.

    >>> render({'a': [1, 2.5, None, True], 'b': b'\\x00', 'c': float('nan')})
    '{"a":[1,2.5,null,true],"b":"b\\'\\\\\\\\x00\\'","c":NaN}'
    """
    if isinstance(data, str):
        return json_string(data)
    if data is None:
        return "null"
    if data is True:
        return "true"
    if data is False:
        return "false"
    if isinstance(data, int):
        try:
            return str(int(data))
        except ValueError:  # more digits than Python converts (sys.set_int_max_str_digits)
            return json_string(f"<integer of {data.bit_length()} bits>")
    if isinstance(data, float):
        if math.isnan(data):
            return "NaN"
        if math.isinf(data):
            return "Infinity" if data > 0 else "-Infinity"
        return repr(data)
    if isinstance(data, (list, tuple, dict)):
        if depth >= MAX_DEPTH:
            return json_string(TOO_DEEP)
        if isinstance(data, dict):
            items = (f"{_render_key(key)}:{render(value, depth + 1)}" for key, value in data.items())
            return "{" + ",".join(items) + "}"
        return "[" + ",".join(render(item, depth + 1) for item in data) + "]"
    if isinstance(data, memoryview):  # a large buffer MSGPACK received out of band: shown as its bytes
        data = data.tobytes()
    return json_string(_safe_str(data))


def _render_key(key: Any) -> str:
    return json_string(key if isinstance(key, str) else _safe_str(key))


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception as exc:  # a value whose __str__ fails is still shown
        return f"<{type(value).__name__}: str() failed: {type(exc).__name__}>"


def format_event(topic: bytes, data: Any, as_json: bool = False, colour: bool = False) -> str:
    """Render one event: a log record as a log line, anything else as ``topic  json``.

    The result is always one line with no character a terminal would obey
    (see :func:`escape_text`), whatever the event holds. A log record's
    trailing newline (the handler's default format ends with one) is dropped.

    Parameters
    ----------
    topic : bytes
        the event's topic frame
    data : object
        the event's decoded data
    as_json : bool
        render ``{"topic": ..., "data": ...}`` as one JSON object
    colour : bool
        colour log lines by level and prefix them with the time

    Returns
    -------
    str
        the line to print, without a newline. A log line starts with the
        record's level name, unless its message already names it in its first
        :data:`LEVEL_NAMED_WITHIN` characters (the handler's default format,
        ``[time] LEVEL file:line - message``, does): the level shows once.

    >>> format_event(b'logs', {'msg': 'Server is up!', 'args': [], 'level': 20})
    'INFO     logs  Server is up!'
    >>> format_event(b'logs', {'msg': 'line one\\n', 'args': [], 'level': 20})
    'INFO     logs  line one'
    >>> format_event(b'logs', {'msg': '[2026-11-30T21:00:00Z] INFO app.py:3 - up\\n', 'level': 20})
    'logs  [2026-11-30T21:00:00Z] INFO app.py:3 - up'
    >>> format_event(b'job:success', {'id': 1})
    'job:success  {"id":1}'
    >>> format_event(b'metric', [1, 2], as_json=True)
    '{"topic":"metric","data":[1,2]}'
    """
    name = topic.decode("utf-8", "replace")
    if as_json:
        return f'{{"topic":{json_string(name)},"data":{render(data)}}}'
    name = escape_text(name)
    if _is_log_record(data):
        level = int(data["level"])
        message = data["msg"]
        if message.endswith("\n"):
            message = message[:-1]
        level_name = _level_name(level)
        line = f"{name}  {escape_text(message)}"
        if not _names_level(message, level_name):
            line = f"{level_name:8s} {line}"
        if colour:
            stamp = datetime.datetime.now().strftime("%H:%M:%S")
            return f"{LEVEL_COLOURS.get(level - level % 10, '')}{stamp} {line}{RESET}"
        return line
    return f"{name}  {render(data)}"


def _is_log_record(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("msg"), str)
        and isinstance(data.get("level"), int)
        and not isinstance(data.get("level"), bool)
    )


def _names_level(message: str, level_name: str) -> bool:
    """True when ``level_name`` is a word of ``message``'s first :data:`LEVEL_NAMED_WITHIN` characters."""
    opening = message[:LEVEL_NAMED_WITHIN]
    return re.search(rf"(?<!\w){re.escape(level_name)}(?!\w)", opening) is not None


def _level_name(level: int) -> str:
    name = logging.getLevelName(level)
    return escape_text(name) if isinstance(name, str) else str(level)


# -- the command -------------------------------------------------------------------------------


def add_tail_arguments(tail: argparse.ArgumentParser, non_negative: Callable[[str], int]) -> None:
    """Declare ``agentzero tail``'s arguments on ``tail``.

    Parameters
    ----------
    tail : argparse.ArgumentParser
        the ``tail`` sub-command's parser
    non_negative : callable
        the argument type for counts (a whole number >= 0)
    """
    tail.add_argument("address", help="the PUB socket to listen to, e.g. tcp://127.0.0.1:6000")
    tail.add_argument(
        "--topic",
        action="append",
        default=None,
        metavar="PREFIX",
        help="only events whose topic starts with PREFIX (repeatable; default: every topic)",
    )
    tail.add_argument(
        "--bind", action="store_true", help="bind ADDRESS instead of connecting to it (default: connect)"
    )
    tail.add_argument(
        "--serializer",
        choices=sorted(SERIALIZERS),
        default="json",
        type=str.lower,
        help="how the publisher serializes its events (default: json)",
    )
    tail.add_argument(
        "--max-size",
        type=_positive_size,
        default=DEFAULT_MAX_SIZE,
        metavar="BYTES",
        help="skip events larger than BYTES, topic included (default: %(default)s)",
    )
    tail.add_argument("--json", action="store_true", help="print one JSON object per line (default: text)")
    tail.add_argument(
        "--count", type=non_negative, default=0, metavar="N", help="stop after N events (default: 0, never)"
    )
    tail.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour log lines by level (default: auto, when stdout is a terminal)",
    )


def _positive_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_SIZE}, got {value}")
    return value


def run_tail(args: argparse.Namespace) -> int:
    """Run ``agentzero tail`` until ``--count`` events, Ctrl-C or SIGTERM.

    Parameters
    ----------
    args : argparse.Namespace
        the parsed command line

    Returns
    -------
    int
        the exit code: 0.

    Raises
    ------
    AgentZeroSocketError
        when the address cannot be bound or connected (reported with exit code 2).
    """
    # Escaped output is plain text, but the terminal's encoding may still lack a character.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    context = zmq.Context()
    sockets = SocketManager(
        zmq, context, serialization_backend=SERIALIZERS[args.serializer](), max_message_size=args.max_size
    )
    stopping = threading.Event()
    restore_signals = stop_on_signals(stopping)
    printed = skipped = 0
    try:
        sockets.create("tail", zmq.SUB)
        if args.bind:
            sockets.bind("tail", args.address, zmq.POLLIN)
        else:
            sockets.connect("tail", args.address, zmq.POLLIN)
        topics = args.topic or [""]
        for topic in topics:
            sockets.set_topic("tail", os.fsencode(topic))  # argv may hold undecodable bytes
        endpoint = sockets.addresses.get("tail", args.address)
        shown = ", ".join(escape_text(topic) or "(all)" for topic in topics)
        how = "bound" if args.bind else "connected"
        _say(f"listening on {escape_text(endpoint)} ({how}; topics: {shown}; {args.serializer})")
        while not stopping.is_set():
            try:
                event = sockets.recv_event_safe("tail", timeout=0.2)
            except MessageTooLarge as error:
                skipped += 1
                size = getattr(error, "size", "too many")
                _say(f"skipped an event of {size} bytes (--max-size is {args.max_size})")
                continue
            except DeserializationError as error:
                skipped += 1
                _say(f"skipped an unreadable event: {error}")
                continue
            if event is None:
                continue
            line = format_event(event.topic, event.data, as_json=args.json, colour=colour)
            print(line, flush=True)
            printed += 1
            if args.count and printed >= args.count:
                break
        return 0
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        restore_signals()
        sockets.close_all(linger=0)
        context.term()
        if skipped:
            _say(f"{printed} events printed, {skipped} skipped")


def _say(text: str) -> None:
    """Write one escaped line to stderr at once."""
    print(f"agentzero tail: {escape_text(text)}", file=sys.stderr, flush=True)
