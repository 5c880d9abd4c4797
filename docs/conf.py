"""Sphinx configuration of the agentzero documentation."""

import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentzero.version import version as release  # noqa: E402

project = "agentzero"
author = "the agentzero developers"
copyright = "2026, the agentzero developers"  # noqa: A001
version = release
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.doctest", "sphinx.ext.viewcode"]
try:  # the `docs` and `test` extras install it; tests/packaging/test_docs.py fails when it is missing
    import sphinx_copybutton  # noqa: F401
except ImportError:
    pass
else:
    extensions.append("sphinx_copybutton")
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
# annotations stay in the signatures (one parameter a line when long); the docstrings
# describe each parameter, return value and exception in words
autodoc_typehints = "signature"
maximum_signature_line_length = 88
exclude_patterns = ["build", "_static"]
# `sphinx-build -b doctest` (tox -e docs) runs the pages' ``.. doctest::`` blocks; the
# docstrings' examples run where they have their module's names, in pytest --doctest-modules
doctest_test_doctest_blocks = ""
# the copy button copies code as it is typed: without the ``>>> ``/``... `` prompts (or a
# shell's ``$ ``), and without the output lines of an example
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_remove_prompts = True
# straight quotes everywhere: text shows code (``'logs'``, ``"msg"``) as it is typed
smartquotes = False

# furo: a wide content column, and code blocks that wrap instead of scrolling sideways
html_theme = "furo"
html_title = f"agentzero {release}"
html_static_path = ["_static"]
html_css_files = ["agentzero.css"]
html_theme_options = {"navigation_with_keys": True}


def _defining_module(app, modname, attribute):
    """viewcode's "[source]" links for :mod:`agentzero.serializers`, whose code lives in its private modules.

    Its public classes and functions keep the package as their ``__module__``
    (as before it was split); the module that holds one is that of its code.
    Anything else follows viewcode's own rule.
    """
    if modname != "agentzero.serializers":
        return None
    value = importlib.import_module(modname)
    for name in attribute.split("."):
        value = getattr(value, name, None)
    if inspect.isclass(value):
        value = next((member for member in vars(value).values() if inspect.isfunction(member)), None)
    return value.__globals__["__name__"] if inspect.isfunction(value) else None


def setup(app):
    app.connect("viewcode-follow-imported", _defining_module)
