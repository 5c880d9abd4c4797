"""Run the installed ``agentzero`` console script as a real subprocess and read what it prints."""

from __future__ import annotations

import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


def console_command() -> list[str]:
    script = Path(sys.executable).with_name("agentzero")
    if script.exists():
        return [str(script)]
    found = shutil.which("agentzero")
    assert found, "the agentzero console script is not installed (pip install -e .)"
    return [found]


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*console_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(*args: str, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*console_command(), *args], capture_output=True, text=True, timeout=timeout, **kw)


def wait_for_banner(process: subprocess.Popen, timeout: float = 10.0) -> str:
    """The next line on the process's stderr; fail (instead of hanging) after ``timeout`` seconds."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stderr.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        process.kill()
        pytest.fail(f"{process.args} printed no line on stderr within {timeout}s")
    assert lines[0], f"the device exited early with {process.wait()}"
    return lines[0]


def stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> int:
    process.send_signal(sig)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{process.args} did not stop on signal {sig}")


class Watched:
    """A console process whose stdout and stderr lines are read as raw bytes by two threads.

    Reading bytes, not text, lets a test see exactly what would reach a terminal.
    """

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [*console_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.out: queue.Queue[bytes] = queue.Queue()
        self.err: queue.Queue[bytes] = queue.Queue()
        self.out_lines: list[bytes] = []
        self.err_lines: list[bytes] = []
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()

    def next_line(self, which: str = "out", timeout: float = 10.0) -> bytes:
        """The next line on stdout (``'out'``) or stderr (``'err'``); fail after ``timeout`` seconds."""
        lines = self.out if which == "out" else self.err
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line on std{which} within {timeout}s; exit code {self.process.poll()}")
        (self.out_lines if which == "out" else self.err_lines).append(line)
        return line

    def wait_for(self, needle: bytes, which: str = "out", timeout: float = 10.0) -> list[bytes]:
        """Read lines until one contains ``needle``; return the lines read before it."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            line = self.next_line(which, max(0.01, deadline - time.monotonic()))
            if needle in line:
                return before
            before.append(line)

    def drain(self, which: str = "err") -> list[bytes]:
        """Every line already printed on that stream and not read yet."""
        lines = self.out if which == "out" else self.err
        drained = []
        while True:
            try:
                drained.append(lines.get_nowait())
            except queue.Empty:
                (self.out_lines if which == "out" else self.err_lines).extend(drained)
                return drained

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.process.poll() is not None:
            return self.process.returncode
        return stop(self.process, sig)


def _pump(stream, lines: queue.Queue) -> None:
    for line in iter(stream.readline, b""):
        lines.put(line)
    stream.close()
