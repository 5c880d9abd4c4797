"""The README's sockets, registered as the README registers them, let ``engage(timeout)`` wait."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.conftest import terminate

README = Path(__file__).resolve().parents[2] / "README.md"
#: the README's example up to its events: the manager, the REP server and the REQ client, one exchange
REQUEST_REPLY = re.compile(r"^```python\n(.*?)^# events", re.M | re.S)


def test_engage_waits_in_a_loop_over_the_readmes_sockets(capsys):
    found = REQUEST_REPLY.search(README.read_text())
    assert found, "the README's example has a request/reply part before its events"
    namespace: dict[str, object] = {}
    exec(compile(found.group(1), str(README), "exec"), namespace)
    sockets, context = namespace["sockets"], namespace["context"]
    try:
        assert "{'result': 5}" in capsys.readouterr().out
        calls = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.5:  # a loop around engage, nothing left to read
            assert sockets.engage(timeout=100) == {}
            calls += 1
        assert calls <= 6, f"engage returned at once: {calls} calls in 0.5 s"
    finally:
        sockets.close_all(linger=0)
        terminate(context)
