"""The registry's log lines about peers are rate-limited; its counters still count every message.

A hostile peer floods the registry with bad messages from a plain DEALER whose
routing identity the test sets, so the log lines about it can be told apart.
At most ``log_burst`` lines about one peer and ``log_limit`` in all are logged
per ``log_interval``; then one summary line says how many were left out.
"""

from __future__ import annotations

import json
import logging
import re

import pytest

from tests.examples.registry_helpers import dealers, registries

pytestmark = pytest.mark.timeout(60)
TOKEN = "logs-token"
BAD_STATUS = b'{"type": "status_update", "status": "available", "load": NaN}'


@pytest.fixture
def registry():
    yield from registries(TOKEN, heartbeat_timeout=30)


@pytest.fixture
def dealer():
    yield from dealers()


def registered(socket) -> str:
    socket.send(json.dumps({"type": "register", "token": TOKEN, "agent_name": "flooder"}).encode())
    assert socket.poll(5000)
    return json.loads(socket.recv())["worker_id"]


def lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "registry"]


def suppressed(summaries: list[str]) -> int:
    return sum(int(re.match(r"suppressed (\d+) log line\(s\) about peers", line)[1]) for line in summaries)


def test_a_flood_of_bad_messages_is_counted_in_full_and_logged_in_brief(registry, dealer, caplog):
    hub = registry()  # the default limits: 32 lines a peer, 128 in all, every 10 s
    flooder = dealer(hub.address, b"flooder")
    registered(flooder)
    with caplog.at_level(logging.WARNING, logger="registry"):
        for _ in range(5000):
            flooder.send(BAD_STATUS)
        assert hub.wait(lambda: hub.skipped == 5000, 30)
        # while the flooder's lines are held back, another peer's still get through
        dealer(hub.address, b"stranger").send(b"\xff garbage")
        assert hub.wait(lambda: hub.skipped == 5001, 5)
        hub.close()  # ends the window: the summary is logged
    logged = lines(caplog)
    flood = [line for line in logged if line.startswith("skipped a malformed message from b'flooder'")]
    summaries = [line for line in logged if line.startswith("suppressed")]
    windows = len(summaries)  # one window, unless the flood straddled the end of one
    assert 1 <= windows <= 2 and len(flood) <= 32 * windows
    assert len(flood) + suppressed(summaries) == 5000
    assert len(logged) == len(flood) + windows + 1
    assert any(line.startswith("skipped a malformed message from b'stranger'") for line in logged)
    if windows == 1:
        assert summaries == [
            "suppressed 4968 log line(s) about peers in the last 10 s (skipped 4968), 4968 about b'flooder'"
        ]  # noqa: E501


def test_the_limit_holds_across_many_peers(registry, dealer, caplog):
    hub = registry(log_interval=60, log_burst=2, log_limit=10)
    peers = [dealer(hub.address, b"peer-%02d" % n) for n in range(40)]
    with caplog.at_level(logging.WARNING, logger="registry"):
        for peer in peers:
            for _ in range(5):
                peer.send(b"\xff garbage")
        assert hub.wait(lambda: hub.skipped == 200, 10)
        hub.close()
    logged = lines(caplog)
    assert len(logged) == 11 and all(
        line.startswith("skipped a malformed message from") for line in logged[:10]
    )
    # the summary names the peer with the most lines left out: one that had lines logged
    summary = (
        r"suppressed 190 log line\(s\) about peers in the last 60 s \(skipped 190\), [34] about b'peer-\d\d'"
    )
    assert re.fullmatch(summary, logged[10]), logged[10]


def test_each_window_logs_again_after_a_summary_of_the_last(registry, dealer, caplog):
    hub = registry(log_interval=0.5, log_burst=3)
    flooder = dealer(hub.address, b"flooder")
    worker_id = registered(flooder)
    with caplog.at_level(logging.WARNING, logger="registry"):
        for _ in range(20):
            flooder.send(
                json.dumps(
                    {"type": "status_update", "worker_id": "someone-else", "status": "available"}
                ).encode()
            )
        assert hub.wait(lambda: hub.skipped == 20, 5)
        # the registry's loop ends the window and logs its summary, with no help from outside
        assert hub.wait(lambda: any(line.startswith("suppressed") for line in lines(caplog)), 5)
        flood = [line for line in lines(caplog) if line.startswith("skipped a status_update")]
        assert (
            len(flood) + suppressed([line for line in lines(caplog) if line.startswith("suppressed")]) == 20
        )
        caplog.clear()
        flooder.send(BAD_STATUS)
        assert hub.wait(lambda: hub.skipped == 21, 5)
    assert lines(caplog)[-1].startswith("skipped a malformed message from b'flooder'")
    assert hub.workers[worker_id].online and hub.alive


def test_the_limits_are_checked(registry):
    for options, word in [
        ({"log_interval": float("nan")}, "log_interval"),
        ({"log_interval": 0}, "log_interval"),
        ({"log_burst": 0}, "log_burst"),
        ({"log_limit": 2.5}, "log_limit"),
        ({"max_workers": 0}, "max_workers"),
        ({"max_finished_jobs": -1}, "max_finished_jobs"),
        ({"forget_after": float("inf")}, "forget_after"),
    ]:
        with pytest.raises(ValueError, match=word):
            registry(**options)
