"""What agentzero needs to know of gevent without importing it: green contexts and monkey-patching.

gevent is imported only when ``zmq.green`` is used, so these answers come
from what is already imported: a green context exists only once
``zmq.green`` was imported, and nothing is monkey-patched unless
``gevent.monkey`` was imported first.

>>> import zmq
>>> is_green_context(zmq.Context.instance())
False
>>> import threading
>>> original("threading", "Thread") is threading.Thread  # nothing is patched here
True
"""

from __future__ import annotations

import sys
from typing import Any


def is_green_context(context: Any) -> bool:
    """Whether ``context`` is a ``zmq.green`` one."""
    green = sys.modules.get("zmq.green")
    return green is not None and isinstance(context, green.Context)


def original(module: str, name: str) -> Any:
    """``module.name`` as it was before gevent's monkey-patching: the real thread primitives."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None:
        return getattr(__import__(module), name)
    return monkey.get_original(module, name)
