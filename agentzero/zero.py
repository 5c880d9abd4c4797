"""The green ``zmq`` module and one shared green context for the whole process.

>>> from agentzero.zero import zmq, context
>>> zmq.__name__
'zmq.green'
>>> isinstance(context, zmq.Context)
True
"""

from __future__ import annotations

import zmq.green as zmq

#: the process-wide green context; under gevent, use this one for every greenlet.
context = zmq.Context()

__all__ = ["context", "zmq"]
