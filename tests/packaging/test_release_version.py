"""One version everywhere: the wheel's metadata, ``agentzero --version``, the changelog's newest release."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import agentzero

# the wheel built from a copy of the project, as tests/packaging/test_packaging.py builds it
from tests.packaging.test_packaging import distributions, metadata, wheel_files  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
RELEASE = re.compile(r"^(\d+\.\d+\.\d+) — (\d{4}-\d{2}-\d{2})\n-{3,}$", re.M)


def _newest_release_in_the_changelog() -> str:
    found = RELEASE.search((ROOT / "docs" / "changelog.rst").read_text())
    assert found, "the changelog names no release"
    return found.group(1)


def _version_printed_by_the_command() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "agentzero", "--version"],
        cwd=ROOT,  # this checkout's agentzero, not an installed one
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_version_is_0_6_0():
    assert agentzero.__version__ == agentzero.version == "0.6.0"


def test_the_command_and_the_changelog_say_the_package_version():
    assert _version_printed_by_the_command() == f"agentzero {agentzero.__version__}"
    assert _newest_release_in_the_changelog() == agentzero.__version__


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_the_wheel_the_command_and_the_changelog_agree(metadata):  # noqa: F811
    changelog = _newest_release_in_the_changelog()
    assert metadata["Version"] == changelog
    assert _version_printed_by_the_command() == f"agentzero {changelog}"
