"""The package's top level: every public error is importable from ``agentzero``, and ``help`` describes it."""

from __future__ import annotations

import inspect
import pydoc

import agentzero
from agentzero import errors


def _public_errors() -> list[str]:
    return sorted(
        name
        for name, value in vars(errors).items()
        if not name.startswith("_")
        and inspect.isclass(value)
        and issubclass(value, errors.AgentZeroSocketError)
        and value.__module__ == errors.__name__
    )


def test_every_public_error_is_exported_from_the_package():
    names = _public_errors()
    for name in ("SocketClosed", "MessageTooLarge", "WrongSocketType", "SocketOptionError"):
        assert name in names
    for name in names:
        assert getattr(agentzero, name) is getattr(errors, name), name
        assert name in agentzero.__all__, name


def test_star_import_gives_the_errors():
    namespace: dict[str, object] = {}
    exec("from agentzero import *", namespace)
    for name in _public_errors():
        assert namespace[name] is getattr(errors, name)


def test_help_describes_the_package_before_any_example():
    text = pydoc.render_doc(agentzero, renderer=pydoc.plaintext)
    description = text.split("DESCRIPTION", 1)[1].strip().splitlines()
    prose = description[: [line.strip() for line in description].index("")]
    assert len(prose) >= 3 and not any(line.lstrip().startswith((">>>", "...")) for line in prose)
    assert "SocketManager" in " ".join(prose)
