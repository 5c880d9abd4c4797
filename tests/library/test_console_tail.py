"""``agentzero tail`` against hostile publishers: real events through a real PUB, read as raw bytes."""

from __future__ import annotations

import json
import re
import subprocess
import time

import msgpack
import pytest
import zmq

from tests.library.console_helpers import Watched, console_command

pytestmark = pytest.mark.timeout(90)

# bytes a terminal obeys: C0 controls but the newline, DEL, the C1 range (CSI 0x9b, OSC 0x9d,
# ...) and, UTF-8 encoded, bidi overrides/isolates and the line/paragraph separators
RAW_CONTROL = re.compile(
    rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]|\xed[\xa0-\xbf]"
)
HOSTILE_TEXT = "clear\x1b[2J osc52\x1b]52;c;SGVsbG8=\x07 cr\rFAKE bel\x07 csi\u009b31m rlo\u202e del\x7f"
VISIBLE = [b"\\x1b[2J", b"\\x1b]52;c;SGVsbG8=", b"\\x07", b"\\r", b"\\x9b31m", b"\\u202e", b"\\x7f"]


@pytest.fixture
def publisher():
    context = zmq.Context()
    socket = context.socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 0)
    yield socket
    socket.close(linger=0)
    context.term()


def start_tail(publisher: zmq.Socket, *extra: str) -> tuple[Watched, str]:
    """Start a tail bound to a wildcard tcp port, connect ``publisher`` to it, wait until events flow."""
    tail = Watched("tail", "tcp://127.0.0.1:*", "--bind", *extra)
    first = tail.next_line("err", timeout=10)
    # the first line comes at once, before any event, and names the real endpoint
    match = re.search(rb"listening on (tcp://127\.0\.0\.1:(\d+))", first)
    assert match and int(match.group(2)) > 0, first
    endpoint = match.group(1).decode()
    publisher.connect(endpoint)
    serializer = "msgpack" if "msgpack" in extra else "json"
    probe = packer(serializer)({"probe": True})
    for _ in range(200):  # the slow joiner: publish until the subscription has arrived
        publisher.send_multipart([b"probe", probe])
        try:
            line = tail.out.get(timeout=0.05)
        except Exception:
            continue
        tail.out_lines.append(line)
        if b"probe" in line:
            break
    else:
        pytest.fail("tail printed no probe")
    return tail, endpoint


def packer(serializer: str):
    if serializer == "msgpack":
        return lambda data: msgpack.packb(data, use_bin_type=True)
    return lambda data: json.dumps(data).encode()


def send_then_mark(
    tail: Watched, publisher: zmq.Socket, frames: list[bytes], mark: int, serializer: str = "json"
) -> list[bytes]:
    """Publish ``frames`` as one message, then a marker; return the stdout lines printed in between."""
    publisher.send_multipart(frames)
    publisher.send_multipart([b"mark", packer(serializer)({"mark": mark})])
    return tail.wait_for(f'"mark":{mark}'.encode())


def assert_no_raw_control(lines: list[bytes]) -> None:
    for line in lines:
        assert RAW_CONTROL.search(line.rstrip(b"\n")) is None, line


def test_tail_survives_hostile_json_events_and_escapes_what_it_prints(publisher):
    tail, _ = start_tail(publisher, "--max-size", "65536")
    try:
        # deeper than tail shows (64) but within what any serializer reads: printed, cut
        deep_200 = b"[" * 200 + b"]" * 200
        printed = send_then_mark(tail, publisher, [b"deep", deep_200], 0)
        assert (
            len(printed) == 1 and printed[0].startswith(b"deep  [[[") and b"<nested too deep>" in printed[0]
        )

        # deeper than orjson encodes (254): printed cut, or refused by the serializer, never fatal
        deep_300 = b"[" * 300 + b"]" * 300
        printed = send_then_mark(tail, publisher, [b"deep", deep_300], 1)
        assert printed == [] or (len(printed) == 1 and b"<nested too deep>" in printed[0])

        deep_dict = b'{"a":' * 1000 + b"1" + b"}" * 1000
        printed = send_then_mark(tail, publisher, [b"deeper", deep_dict], 2)
        assert len(printed) <= 1  # printed truncated, or skipped as unreadable: never fatal

        abyss = b"[" * 30_000 + b"]" * 30_000  # deeper than Python's own parser recurses
        assert send_then_mark(tail, publisher, [b"abyss", abyss], 3) == []

        record = json.dumps({"msg": HOSTILE_TEXT + "\n", "args": [], "level": 40}).encode()
        printed = send_then_mark(tail, publisher, [b"logs\x1b[31m", record], 4)
        assert len(printed) == 1
        line = printed[0]
        assert line.startswith(b"ERROR    logs\\x1b[31m  clear\\x1b[2J")
        assert all(visible in line for visible in VISIBLE), line
        assert line.endswith(b"del\\x7f\n")  # the record's trailing newline is dropped, not shown

        surrogate = b'{"msg": "lone \\ud800 surrogate \\udfff", "level": 20}'
        printed = send_then_mark(tail, publisher, [b"logs", surrogate], 5)
        if printed:  # the serializer may also refuse it: then it is skipped, not fatal
            assert printed == [b"INFO     logs  lone \\ud800 surrogate \\udfff\n"]

        printed = send_then_mark(tail, publisher, [b"numbers", b'{"nan": NaN, "big": 1e999, "n": -1}'], 6)
        assert printed in ([b'numbers  {"nan":NaN,"big":Infinity,"n":-1}\n'], [])

        garbage = [
            [b"not-json", b"\xff\xfe\x1b[2J\x07 definitely not json"],
            [b"lonely frame"],
            [b"three", b"{}", b"frames"],
            [b"", b""],
            [b"many"] + [b"x" * 1000] * 200,  # 200 kB in small frames, over --max-size
            [b"wide", b"[" + b"9" * 5000 + b"]"],  # more digits than Python converts
        ]
        for mark, frames in enumerate(garbage, start=7):
            assert send_then_mark(tail, publisher, frames, mark) == []

        # one frame over --max-size: libzmq drops the connection, the publisher reconnects
        publisher.send_multipart([b"huge", b'"' + b"x" * 200_000 + b'"'])
        for _ in range(200):
            publisher.send_multipart([b"after", b'{"still": "alive"}'])
            try:
                line = tail.out.get(timeout=0.05)
            except Exception:
                continue
            tail.out_lines.append(line)
            if b"still" in line:
                break
        else:
            pytest.fail("tail printed nothing after an oversized frame")
    finally:
        assert tail.stop() == 0
    errors = tail.drain("err")
    assert_no_raw_control(tail.out_lines + errors)
    text = b"".join(errors)
    assert b"Traceback" not in text
    assert text.count(b"skipped an unreadable event") >= 5
    assert b"skipped an event of" in text and b"--max-size is 65536" in text
    assert re.search(rb"\d+ events printed, \d+ skipped", text)


def test_tail_json_lines_stay_valid_json_for_hostile_events(publisher):
    tail, _ = start_tail(publisher, "--json")
    try:
        record = json.dumps({"msg": HOSTILE_TEXT, "level": 20, "nested": [[[["x"]]]]}).encode()
        printed = send_then_mark(tail, publisher, [b"t\x1b\x07", record], 1)
        printed += send_then_mark(tail, publisher, [b"deep", b"[" * 200 + b"]" * 200], 2)
    finally:
        assert tail.stop() == 0
    assert_no_raw_control(printed)
    first, deep = (json.loads(line) for line in printed)
    assert first == {"topic": "t\x1b\x07", "data": json.loads(record)}  # escaped, so decoded back whole
    depth = 0
    while isinstance(deep, dict) and "data" in deep or isinstance(deep, list):
        deep = deep["data"] if isinstance(deep, dict) else deep[0]
        depth += 1
    assert deep == "<nested too deep>" and depth > 60


def test_tail_reads_msgpack_and_survives_its_hostile_events(publisher):
    tail, _ = start_tail(publisher, "--serializer", "msgpack", "--max-size", "100000")
    pack = packer("msgpack")
    try:
        record = pack({"msg": "from msgpack\x1b[2J\n", "args": [], "level": 30})
        assert send_then_mark(tail, publisher, [b"logs", record], 1, "msgpack") == [
            b"WARNING  logs  from msgpack\\x1b[2J\n"
        ]
        blob = pack({"blob": b"\x00\x1b\xff", b"bytes key": 1, "float": float("inf")})
        assert send_then_mark(tail, publisher, [b"bin", blob], 2, "msgpack") == [
            b'bin  {"blob":"b\'\\\\x00\\\\x1b\\\\xff\'","b\'bytes key\'":1,"float":Infinity}\n'
        ]
        deep = b"\x91" * 200 + b"\xc0"  # 200 nested one-element arrays around nil
        (line,) = send_then_mark(tail, publisher, [b"deep", deep], 3, "msgpack")
        assert line.startswith(b"deep  [[[") and b"<nested too deep>" in line
        deeper = b"\x91" * 300 + b"\xc0"  # printed cut, or refused by the serializer
        assert len(send_then_mark(tail, publisher, [b"deep", deeper], 30, "msgpack")) <= 1
        ext = msgpack.packb([msgpack.ExtType(42, b"\x1b[2J"), "ok"])
        printed = send_then_mark(tail, publisher, [b"ext", ext], 4, "msgpack")
        assert len(printed) <= 1  # shown as text or refused by the serializer
        assert (
            send_then_mark(tail, publisher, [b"bad", b"\xc1\x1b[2J"], 5, "msgpack") == []
        )  # 0xc1 is never used
        # JSON is not what this tail reads: skipped, not fatal
        assert send_then_mark(tail, publisher, [b"json", b'{"msg": "x", "level": 20}'], 6, "msgpack") == []
    finally:
        assert tail.stop() == 0
    errors = tail.drain("err")
    assert_no_raw_control(tail.out_lines + errors)
    assert b"Traceback" not in b"".join(errors)
    assert b"skipped an unreadable event" in b"".join(errors)


def test_tail_strips_the_trailing_newline_of_the_log_format(publisher):
    tail, _ = start_tail(publisher)
    try:
        formatted = "[2026-11-30T21:00:00Z] INFO app.py:12 - hello"
        printed = {
            f"{formatted}\n": f"logs  {formatted}\n".encode(),  # the record names its level: not again
            "plain hello": b"INFO     logs  plain hello\n",
            "two\nlines\n": b"INFO     logs  two\\nlines\n",
        }
        for mark, (message, expected) in enumerate(printed.items()):
            data = json.dumps({"msg": message, "args": [], "level": 20}).encode()
            (line,) = send_then_mark(tail, publisher, [b"logs", data], mark)
            assert line == expected
    finally:
        assert tail.stop() == 0


def test_tail_piped_into_head_stops_quietly(publisher):
    # `agentzero tail ... | head -n 2`: once head exits, the next print meets a closed pipe
    tail = " ".join(console_command() + ["tail", "tcp://127.0.0.1:*", "--bind"])
    shell = subprocess.Popen(
        ["bash", "-c", f"set -o pipefail; {tail} | head -n 2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first = shell.stderr.readline()
        match = re.search(rb"listening on (tcp://127\.0\.0\.1:\d+)", first)
        assert match, first
        publisher.connect(match.group(1).decode())
        deadline = time.monotonic() + 20
        while shell.poll() is None and time.monotonic() < deadline:
            publisher.send_multipart([b"flood", b'{"n": 1}'])
            time.sleep(0.01)
        assert shell.wait(timeout=10) == 0, shell.stderr.read()
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()
    assert shell.stdout.read() == b'flood  {"n":1}\n' * 2
    assert b"Traceback" not in shell.stderr.read()
