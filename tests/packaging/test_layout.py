"""The layout keeps its promises: nothing outside the package imports a private part of it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: an import of a private module of agentzero (``agentzero._x``, ``agentzero.serializers._x``)
_PRIVATE = re.compile(r"^\s*(?:from|import)\s+agentzero(?:\.\w+)*\._\w*", re.M)
#: an import of its core or flavours
_INSIDE = re.compile(r"^\s*(?:from|import)\s+agentzero\.(?:manager|flavours)\b", re.M)


def _sources(*folders: str) -> list[Path]:
    return [path for folder in folders for path in (ROOT / folder).rglob("*.py")]


def test_nothing_outside_the_package_imports_a_private_module_of_it():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources("examples", "benchmarks", "tests", "docs")
        if _PRIVATE.search(path.read_text())
    ]
    offenders += [
        str(path.relative_to(ROOT))
        for path in (ROOT / "docs").glob("*.rst")
        if _PRIVATE.search(path.read_text())
    ]
    assert offenders == []


def test_the_examples_and_benchmarks_use_the_managers_public_calls_only():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources("examples", "benchmarks")
        if _INSIDE.search(path.read_text())
    ]
    assert offenders == []


def test_the_serializers_import_neither_the_core_nor_the_flavours():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "agentzero" / "serializers").rglob("*.py")
        if _INSIDE.search(path.read_text())
    ]
    assert offenders == []


def test_gevent_is_imported_only_for_zmq_green():
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import agentzero, agentzero.core, agentzero.asyncio, sys; assert 'gevent' not in sys.modules",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
