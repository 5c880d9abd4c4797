"""The documentation: the site builds with warnings as errors, and says what the code does.

Every example of ``docs/*.rst`` runs as a doctest in ``make test`` (pytest's
``--doctest-glob``); these tests check the rest: the theme, the pages a new
user needs, the changelog's dates, and that every public method of the
manager documents its parameters, return value and exceptions.
"""

from __future__ import annotations

import builtins
import datetime
import html
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

import agentzero
import agentzero.errors
from agentzero.core import SocketManager

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
SECTION = re.compile(r"^(\w[\w ]*)\n-{3,}[ \t]*$", re.M)
#: the unreleased changelog entry, when there is one, is dated the day of the round that wrote it
UNRELEASED_DATE = datetime.date(2026, 12, 7)
#: the day the newest version (``agentzero.__version__``) was cut
RELEASE_DATE = datetime.date(2026, 12, 7)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stderr
    return out


def text_of(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


@pytest.mark.timeout(180)
def test_sphinx_builds_without_warnings(site):
    page = (site / "api.html").read_text()
    for name in ("send_safe", "recv_event_safe", "wait_until_ready", "ZMQPubHandler", "DeserializationError"):
        assert name in page
    # the guide includes the example's real code
    guide = text_of(site / "pipeline.html")
    assert "def _drop_worker(self, worker: WorkerRecord, why: str)" in guide
    assert "self.sockets.bind_to_random_port(name, zmq.POLLIN, local_address=host)" in guide


@pytest.mark.timeout(180)
def test_the_theme_wraps_code_instead_of_cutting_it(site):
    page = (site / "quickstart.html").read_text()
    assert "styles/furo.css" in page
    assert "agentzero.css" in page
    css = (site / "_static" / "agentzero.css").read_text()
    assert re.search(r"\.highlight pre[^{]*\{[^}]*white-space:\s*pre-wrap", css)


@pytest.mark.timeout(180)
def test_the_copy_button_copies_examples_without_prompts_or_output(site):
    copybutton = site / "_static" / "copybutton.js"
    assert copybutton.exists(), "sphinx-copybutton is missing: pip install -e '.[test]'"
    assert "copybutton.js" in (site / "asyncio.html").read_text()
    found = re.search(
        r"formatCopyText\(text, '((?:[^'\\]|\\.)*)', (\w+), (\w+), (\w+)", copybutton.read_text()
    )
    assert found, "copybutton.js has no formatCopyText call"
    # the prompt as the page's JavaScript gets it: a regular expression, prompt lines only, prompts removed
    assert found.group(2, 3, 4) == ("true", "true", "true")
    prompt = re.compile("^(" + found.group(1).replace("\\\\", "\\") + ")(.*)")
    for line, copied in (
        (">>> import zmq", "import zmq"),
        ("...     await sockets.send_safe('out', 1)", "    await sockets.send_safe('out', 1)"),
        ("$ make test", "make test"),
    ):
        assert prompt.sub(r"\2", line) == copied
    assert not prompt.match("{'job': 42}")  # output is not copied


@pytest.mark.timeout(180)
def test_interactive_examples_scroll_instead_of_wrapping_to_column_0(site):
    css = (site / "_static" / "agentzero.css").read_text()
    for selector in (r"\.highlight-pycon pre", r"\.doctest pre"):
        assert re.search(selector + r"[^{]*\{[^}]*white-space:\s*pre;", css), selector
    assert '<div class="highlight-pycon' in (site / "asyncio.html").read_text()


def test_the_asyncio_page_documents_async_with_in_a_doctest():
    text = (DOCS / "asyncio.rst").read_text()
    section = text[text.index("``async with`` and ``with``") :]
    example = section[section.index(".. doctest::") : section.index("\n\n", section.index(">>>"))]
    assert "async with SocketManager(" in example


@pytest.mark.timeout(180)
def test_the_api_page_shows_no_inherited_not_implemented_text(site):
    page = text_of(site / "api.html")
    handler = page[page.index("class agentzero.logs.ZMQPubHandler") :]
    handler = handler[: handler.index("Serializers")]
    assert "emit" in handler
    assert "NotImplementedError" not in handler
    assert "Do whatever it takes" not in handler


@pytest.mark.timeout(180)
def test_examples_in_docstrings_render_as_code(site):
    """A doctest right after a Returns or Raises section was mangled into a field list."""
    page = text_of(site / "api.html")
    assert ">>> try:" in page
    assert "\"KeyError: 'missing'\"" in page
    assert "“" not in page and "”" not in page, "text shows code: straight quotes only"


def test_the_quick_start_has_req_rep_over_tcp_and_a_subscribe_loop():
    text = (DOCS / "quickstart.rst").read_text()
    assert "zmq.REP" in text and "zmq.REQ" in text
    assert "bind_to_random_port(" in text and "local_address='tcp://127.0.0.1'" in text
    assert re.search(r"for topic, data in sockets\.subscribe\([^)]*keep_polling\)", text)
    # every example runs: it is a doctest, not a literal block
    assert text.count(".. doctest::") >= 6


def test_the_units_page_calls_out_seconds_and_milliseconds():
    text = (DOCS / "units.rst").read_text()
    for phrase in ("seconds", "milliseconds", "polling_timeout", "engage(timeout)", "ready(name, mechanism"):
        assert phrase in text, phrase
    index = (DOCS / "index.rst").read_text()
    assert re.search(r"^\s+units$", index, re.M)


def test_the_changelog_is_dated_newest_first():
    text = (DOCS / "changelog.rst").read_text()
    titles = re.findall(r"^(.+)\n-{3,}$", text, re.M)
    assert titles, "no entries"
    dates = []
    for title in titles:
        found = re.fullmatch(r"(Unreleased|\d+\.\d+\.\d+) — (\d{4}-\d{2}-\d{2})", title)
        assert found, f"undated changelog entry: {title!r}"
        dates.append(datetime.date.fromisoformat(found.group(2)))
    assert dates == sorted(dates, reverse=True)
    if titles[0].startswith("Unreleased"):
        assert dates[0] == UNRELEASED_DATE
        titles = titles[1:]
    # the newest release is the version agentzero says it is, dated the day it was cut
    assert titles[0] == f"{agentzero.__version__} — {RELEASE_DATE.isoformat()}"


def test_every_doc_page_is_in_the_toctree():
    index = (DOCS / "index.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", index, re.M))
    pages = {path.stem for path in DOCS.glob("*.rst")} - {"index"}
    assert pages <= listed, pages - listed


# -- docstrings ---------------------------------------------------------------------------------


def sections(doc: str) -> dict[str, str]:
    """Split a numpydoc docstring into ``{section title: body}``."""
    found = list(SECTION.finditer(doc))
    return {
        match.group(1): doc[match.end() : found[index + 1].start() if index + 1 < len(found) else len(doc)]
        for index, match in enumerate(found)
    }


def entries(body: str) -> list[str]:
    """The names a Parameters or Raises section documents (``a, b : type`` counts both)."""
    names = []
    for line in body.splitlines():
        if line and not line[0].isspace():
            names.extend(part.strip().lstrip("*") for part in line.split(" : ")[0].split(","))
    return names


def exception_exists(name: str) -> bool:
    if name.startswith("zmq."):
        return isinstance(getattr(zmq, name[4:], None), type)
    found = getattr(agentzero.errors, name, None) or getattr(builtins, name, None)
    return isinstance(found, type) and issubclass(found, BaseException)


def public_methods(cls: type) -> list[str]:
    return [
        name
        for name in dir(cls)
        if not name.startswith("_")
        and (inspect.isfunction(getattr(cls, name)) or inspect.iscoroutinefunction(getattr(cls, name)))
    ]


def managers() -> list[type]:
    found = [SocketManager]
    try:
        found.append(importlib.import_module("agentzero.asyncio").SocketManager)
    except ImportError:
        pass
    return found


METHODS = [(cls, name) for cls in managers() for name in public_methods(cls)]


@pytest.mark.parametrize(("cls", "name"), METHODS, ids=[f"{cls.__module__}.{name}" for cls, name in METHODS])
def test_every_public_method_documents_parameters_returns_and_raises(cls, name):
    method = getattr(cls, name)
    doc = inspect.getdoc(method)
    assert doc and doc.splitlines()[0].strip(), f"{name} has no summary line"
    parts = sections(doc)
    signature = inspect.signature(method)
    parameters = [p for p in list(signature.parameters)[1:] if p not in ("args", "kwargs")]
    if parameters:
        assert "Parameters" in parts, f"{name}: no Parameters section"
        assert entries(parts["Parameters"]) == parameters, f"{name}: Parameters differ from the signature"
    returns = signature.return_annotation
    if returns not in (None, "None", inspect.Signature.empty):
        assert {"Returns", "Yields"} & set(parts), f"{name} returns {returns} but has no Returns section"
    assert "Raises" in parts, f"{name}: no Raises section"
    raised = entries(parts["Raises"])
    assert raised, f"{name}: an empty Raises section"
    for exception in raised:
        assert exception == "Exception" or exception_exists(exception), f"{name} raises unknown {exception}"


def test_the_manager_documents_its_constructor():
    parts = sections(inspect.getdoc(SocketManager))
    parameters = list(inspect.signature(SocketManager.__init__).parameters)[1:]
    assert entries(parts["Parameters"]) == parameters
    assert "Raises" in parts


def test_subscribe_says_a_deserialization_error_ends_the_generator():
    doc = inspect.getdoc(SocketManager.subscribe)
    assert "DeserializationError" in sections(doc)["Raises"]
    assert re.search(r"DeserializationError[^.]*ends", " ".join(doc.split()))


def library_docstrings():
    """The docstrings of the modules the API pages render (the command line's are not)."""
    for info in pkgutil.iter_modules(agentzero.__path__):
        if info.name == "__main__" or info.name.startswith("console"):
            continue
        module = importlib.import_module(f"agentzero.{info.name}")
        yield module.__name__, module.__doc__
        for name, value in vars(module).items():
            if getattr(value, "__module__", None) != module.__name__:
                continue
            yield f"{module.__name__}.{name}", value.__doc__
            for member, attribute in vars(value).items() if inspect.isclass(value) else ():
                function = attribute.fget if isinstance(attribute, property) else attribute
                function = getattr(function, "__func__", function)
                if callable(function):
                    yield f"{module.__name__}.{name}.{member}", function.__doc__


def test_no_example_hides_inside_a_returns_or_raises_section():
    """numpydoc wants examples under "Examples": napoleon turns a doctest after Raises into fields."""
    misplaced = []
    for where, doc in library_docstrings():
        if not isinstance(doc, str):
            continue
        found = list(SECTION.finditer(inspect.cleandoc(doc)))
        if found and ">>>" in inspect.cleandoc(doc)[found[-1].end() :]:
            if found[-1].group(1) not in ("Examples", "Notes"):
                misplaced.append(f"{where} (after {found[-1].group(1)})")
    assert not misplaced


# -- the README ---------------------------------------------------------------------------------

README = ROOT / "README.md"


def test_the_readme_gives_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_the_readme_layout_describes_every_module():
    rows = dict(re.findall(r"^\| `([^`]+)` \| (.+) \|$", README.read_text(), re.M))
    package = Path(agentzero.__file__).parent
    modules = {f"agentzero/{path.relative_to(package).as_posix()}" for path in package.rglob("*.py")}
    assert modules <= set(rows), sorted(modules - set(rows))
    assert "agentzero/py.typed" in rows
    for path, description in rows.items():
        if not path.startswith("agentzero/"):
            continue
        if (ROOT / path).exists():
            assert not description.startswith("(coming)"), f"{path} exists: drop '(coming)' in the README"
        else:
            assert description.startswith("(coming)"), f"{path} is described but does not exist"


@pytest.mark.timeout(90)
def test_the_readme_example_runs(tmp_path):
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.M | re.S)
    assert blocks
    for number, block in enumerate(blocks):
        script = tmp_path / f"readme_{number}.py"
        script.write_text(block)
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
    assert "{'result': 5}" in done.stdout
    assert "b'job:progress' [" in done.stdout
