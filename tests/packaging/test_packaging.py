"""What a user installs: the wheel and the source distribution, their metadata and files.

The distributions are built from a copy of the project's packaging files in a
temporary directory, with the PEP 517 hooks of setuptools (what ``pip`` and
``python -m build`` call), so the work tree is left as it was.
"""

from __future__ import annotations

import configparser
import email
import email.policy
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

import agentzero

ROOT = Path(__file__).resolve().parents[2]
PACKAGING_FILES = ("pyproject.toml", "setup.py", "README.md", "LICENSE")
TESTED_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")

BUILD = textwrap.dedent(
    """
    import os, sys, tarfile
    from pathlib import Path
    from setuptools import build_meta

    out = Path(sys.argv[1])
    sdist = build_meta.build_sdist(str(out / "sdist"))
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(out / "sdist" / sdist) as archive:
        archive.extractall(out / "unpacked", **safe)
    (source,) = (out / "unpacked").iterdir()
    os.chdir(source)
    wheel = build_meta.build_wheel(str(out / "wheel"))
    print(out / "sdist" / sdist)
    print(out / "wheel" / wheel)
    """
)


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    """Build the sdist from a copy of the project, then the wheel from the sdist (as ``build`` does)."""
    work = tmp_path_factory.mktemp("dist")
    project = work / "project"
    project.mkdir()
    for name in PACKAGING_FILES:
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(
        ROOT / "agentzero", project / "agentzero", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(work)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sdist, wheel = (Path(line) for line in done.stdout.strip().splitlines()[-2:])
    return sdist, wheel


@pytest.fixture(scope="module")
def wheel_files(distributions):
    with zipfile.ZipFile(distributions[1]) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def metadata(wheel_files):
    (name,) = [name for name in wheel_files if name.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel_files[name], policy=email.policy.compat32)


@pytest.mark.timeout(150)
def test_the_wheel_ships_the_license_file(wheel_files, metadata):
    licenses = [name for name in wheel_files if re.search(r"\.dist-info/(licenses/)?LICENSE$", name)]
    assert licenses, sorted(wheel_files)
    assert wheel_files[licenses[0]] == (ROOT / "LICENSE").read_bytes()
    assert metadata["License-Expression"] == "MIT"
    assert "LICENSE" in metadata.get_all("License-File")


def test_the_license_file_is_the_mit_license_the_metadata_declares():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


@pytest.mark.timeout(150)
def test_the_wheel_ships_py_typed_and_only_the_library(wheel_files):
    assert "agentzero/py.typed" in wheel_files
    modules = {name for name in wheel_files if name.startswith("agentzero/")}
    package = Path(agentzero.__file__).parent
    shipped = {f"agentzero/{path.relative_to(package).as_posix()}" for path in package.rglob("*.py")}
    assert shipped <= modules, sorted(shipped - modules)  # the core and the flavours too
    top_level = {name.split("/")[0] for name in wheel_files if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"agentzero"}, "tests, examples or docs leaked into the wheel"


@pytest.mark.timeout(150)
def test_the_sdist_has_what_a_rebuild_needs(distributions):
    with tarfile.open(distributions[0]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in (*PACKAGING_FILES, "agentzero/py.typed", "agentzero/core.py"):
        assert needed in names, needed


@pytest.mark.timeout(150)
def test_the_metadata_comes_from_pyproject(metadata):
    assert metadata["Name"] == "agentzero"
    assert metadata["Version"] == agentzero.__version__
    assert metadata["Requires-Python"] == ">=3.9"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "make test" in metadata.get_payload()
    classifiers = set(metadata.get_all("Classifier"))
    for needed in ("Typing :: Typed", "Framework :: AsyncIO", "Framework :: Gevent"):
        assert needed in classifiers
    versions = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.match(r".*Python :: 3\.\d+$", c)}
    assert versions == set(TESTED_PYTHONS)


@pytest.mark.timeout(150)
def test_the_extras(metadata):
    requires = metadata.get_all("Requires-Dist")

    def extra(name: str) -> set[str]:
        marker = f'extra == "{name}"'
        return {re.split(r"[\[<>=!;~ ]", item, maxsplit=1)[0] for item in requires if marker in item}

    assert {"pytest", "pytest-timeout", "hypothesis", "sphinx", "furo", "mypy", "noob", "noob-core"} <= extra(
        "test"
    )
    assert {"pydantic", "rich"} <= extra("examples")
    assert {"sphinx", "furo"} <= extra("docs")
    noob = [item for item in requires if item.startswith("noob")]
    assert any("noob[zmq]==1002.0.0" in item.replace(" ", "") for item in noob), noob
    assert any("noob-core==0.1.0" in item.replace(" ", "") for item in noob), noob
    assert all('python_version >= "3.11"' in item for item in noob), noob
    dependencies = {
        re.split(r"[\[<>=!;~ ]", item, maxsplit=1)[0] for item in requires if "extra ==" not in item
    }
    assert dependencies == {"pyzmq", "gevent", "msgpack", "orjson"}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="noob is installed on Python 3.11+ only")
def test_the_test_extra_installed_noob_at_the_pinned_versions():
    assert importlib.metadata.version("noob") == "1002.0.0"
    assert importlib.metadata.version("noob-core") == "0.1.0"


@pytest.mark.timeout(150)
def test_the_console_script(wheel_files):
    (name,) = [name for name in wheel_files if name.endswith(".dist-info/entry_points.txt")]
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel_files[name].decode())
    assert entry_points["console_scripts"]["agentzero"] == "agentzero.cli.main:main"


def test_setup_py_still_works(tmp_path):
    for name in PACKAGING_FILES:
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "agentzero", tmp_path / "agentzero", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "setup.py", "--name", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["agentzero", agentzero.__version__]


def test_tox_has_an_env_per_tested_python_and_lint_docs():
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = [env.strip() for env in tox["tox"]["envlist"].split(",")]
    pythons = {f"py{version.replace('.', '')}" for version in TESTED_PYTHONS}
    assert pythons <= set(envs)
    assert {"lint", "docs"} <= set(envs)
    assert {env for env in envs if env.startswith("py")} == pythons, "classifiers and tox disagree"
    assert "test" in tox["testenv"]["extras"]
    for env in ("lint", "docs"):
        assert tox[f"testenv:{env}"]["commands"].strip()
