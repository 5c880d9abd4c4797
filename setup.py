"""Packaging for agentzero; metadata lives here so that ``pip install .`` works everywhere."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'^version = "([^"]+)"', (HERE / "agentzero" / "version.py").read_text(), re.M).group(1)

TEST_REQUIRES = [
    "pytest>=7.4,<10",
    "pytest-timeout>=2.2,<3",
    "hypothesis>=6.90,<7",
    'noob[zmq]==1002.0.0; python_version >= "3.11"',
    'noob-core==0.2.1; python_version >= "3.11"',
]
EXAMPLES_REQUIRES = [
    "pydantic>=2.11,<3",
    "rich>=13,<15",
]
DOCS_REQUIRES = [
    "sphinx>=7,<9",
]

setup(
    name="agentzero",
    version=VERSION,
    description="Named ZeroMQ sockets in one poller, with safe send, receive and publish; gevent-aware.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="MIT",
    entry_points={"console_scripts": ["agentzero = agentzero.console:main"]},
    python_requires=">=3.9",
    packages=find_packages(include=["agentzero", "agentzero.*"]),
    install_requires=[
        "pyzmq>=25,<28",
        "gevent>=23.9",
        "msgpack>=1.0,<2",
        "orjson>=3.9,<4",
    ],
    extras_require={
        "test": TEST_REQUIRES + EXAMPLES_REQUIRES + DOCS_REQUIRES,
        "examples": EXAMPLES_REQUIRES,
        "docs": DOCS_REQUIRES + EXAMPLES_REQUIRES,
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Gevent",
        "Topic :: System :: Networking",
        "Topic :: System :: Distributed Computing",
    ],
)
