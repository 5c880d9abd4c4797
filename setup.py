"""Packaging for agentzero: the metadata lives in ``pyproject.toml`` (PEP 621).

This file stays so that ``python setup.py ...`` and tools that look for it keep
working; everything it needs comes from ``pyproject.toml``.
"""

from setuptools import setup

setup()
