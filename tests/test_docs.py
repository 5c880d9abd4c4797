"""The documentation site builds with warnings as errors (its examples run as doctests)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.timeout(180)
def test_sphinx_builds_without_warnings(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "api.html").read_text()
    for name in ("send_safe", "recv_event_safe", "wait_until_ready", "ZMQPubHandler", "DeserializationError"):
        assert name in page
    # the guide includes the example's real code
    guide = re.sub(r"<[^>]+>", "", (tmp_path / "pipeline.html").read_text())
    assert "def _drop_worker(self, worker: WorkerRecord, why: str)" in guide
    assert "self.sockets.bind_to_random_port(name, zmq.POLLIN, local_address=host)" in guide
