"""The ``agentzero`` command line (issue 20): a bare call shows the usage, tail shows each level once."""

from __future__ import annotations

import json
import logging
import re

import pytest
import zmq

from agentzero.core import SocketManager
from tests.library.console_helpers import run
from tests.library.test_console_tail import start_tail

pytestmark = pytest.mark.timeout(60)


def test_a_bare_agentzero_prints_the_usage_line_then_its_error_and_exits_2():
    done = run()
    assert done.returncode == 2, done.stderr
    usage, error = done.stderr.splitlines()
    assert usage.startswith("usage: agentzero ") and "{forwarder,queue,streamer,tail,keys}" in usage
    assert error == "agentzero: error: the following arguments are required: command"
    assert done.stdout == ""


def test_other_bad_arguments_still_print_one_line_without_the_usage():
    done = run("tail")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "agentzero tail: error: the following arguments are required: address"
    ]


@pytest.fixture
def sockets():
    context = zmq.Context()
    manager = SocketManager(zmq, context)
    yield manager
    manager.close_all(linger=0)
    context.term()


def test_tail_prints_the_level_of_each_log_record_once(sockets):
    """Records of a real ZMQPubHandler: its default format names the level, a bare one does not."""
    publisher = sockets.create("logs", zmq.PUB)
    tail, _ = start_tail(publisher)
    logger = sockets.get_logger("logs", topic_name="logs", logger_name="review3-tail")
    (handler,) = logger.handlers
    try:
        printed = []
        for mark, level in enumerate((logging.INFO, logging.WARNING, logging.ERROR)):
            logger.log(level, "disk %s is full", "/var")
            printed.append((level, lines_until_mark(tail, publisher, mark)))
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.warning("bare message")
        bare = lines_until_mark(tail, publisher, 3)
    finally:
        logger.handlers.clear()
        assert tail.stop() == 0
    for level, lines in printed:
        name = logging.getLevelName(level).encode()
        (line,) = lines
        assert re.fullmatch(
            rb"logs  \[[^]]+\] " + name + rb" test_console_usage\.py:\d+ - disk /var is full( - None)?\n",
            line,
        ), line
        assert line.count(name) == 1, line
    assert bare == [b"WARNING  logs  bare message\n"]


def lines_until_mark(tail, publisher, mark: int) -> list[bytes]:
    """The lines tail printed for what was published before a marker event, published now."""
    publisher.send_multipart([b"mark", json.dumps({"mark": mark}).encode()])
    return tail.wait_for(f'"mark":{mark}'.encode())
