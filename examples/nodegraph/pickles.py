"""``pck__`` values: how noob carries what JSON cannot, and why reading them here is safe.

Upstream noob sends a value that JSON cannot represent as the string
``"pck__" + base64(pickle.dumps(value))``; every error travels that way, as a
pickled ``ErrorValue`` dict whose ``err_type`` is the exception *class*.
``pickle.loads`` on bytes from a peer runs whatever callable the peer names
(``os.system``, ``subprocess.Popen``, ``builtins.eval``), so this module never
calls it. The safety argument, in five steps:

1. A pickle can only reach code through a *global*: the ``GLOBAL``,
   ``STACK_GLOBAL``, ``INST`` and ``EXT*`` opcodes name one, and ``REDUCE``,
   ``NEWOBJ``, ``OBJ`` and ``BUILD`` can only call, instantiate or change
   what such a name resolved to, or a built-in value the pickle built from
   literals.
2. :class:`~examples.nodegraph.unpickler.SafeUnpickler` runs the opcodes
   itself (none of :mod:`pickle`'s unpickler runs) and **imports nothing**:
   a name in ``builtins`` that is an exception class (a subclass of
   ``Exception``) resolves to that class, a few inert built-in constructors
   (``complex``, ``set``, ``frozenset``, ``bytearray``, ``slice``,
   ``range``) resolve to read-only tokens that check their arguments, and
   every other name becomes a :class:`RemoteGlobal` subclass, one per
   qualified name and pickle, that only records the name, the arguments it
   was called with and any state. ``EXT*`` codes name a global through
   :mod:`copyreg`'s registry and resolve the same way. Persistent ids and
   out-of-band buffers are refused.
3. Only those classes and tokens can be called. Calling a built-in exception
   class stores its arguments and nothing else; ``BUILD`` sets plain
   attributes on an exception instance or the state of a stand-in instance,
   and refuses anything else (a class, a token, a list): nothing the module
   keeps can be changed by a pickle.
4. Work and memory are bounded by the pickle's size: everything that can make
   more than it reads (calls, the bytes and elements they copy, stand-in
   classes, hashing keys) is counted against a budget proportional to it
   (:class:`TooMuchWork`); a set or dict whose keys share one hash is refused
   before it gets slow (:class:`HashFlooding`); and so is a value nested
   deeper than :data:`MAX_DEPTH`, as a JSON value would be (:class:`TooDeep`).
5. The pickle itself is capped (:data:`MAX_PICKLE_BYTES`), and the sockets
   cap the frame that carries it.

So a decoded pickle is plain data, built-in exception objects, inert tokens
and stand-ins; nothing ran while decoding it, and decoding took time and
memory in proportion to its size.

When *sending*, :func:`encode` pickles only values made of built-in types
(checked before pickling, exactly: no subclasses), so an upstream peer's plain
``pickle.loads`` imports nothing of ours either.

>>> import pickle, base64, os
>>> class Hostile:
...     def __reduce__(self):
...         return os.system, ("echo pwned",)
>>> decode("pck__" + base64.b64encode(pickle.dumps(Hostile())).decode())
<remote posix.system('echo pwned',)>
>>> decode(encode({1, 2}))
{1, 2}
"""

from __future__ import annotations

import base64
import binascii
import io
import pickle
from typing import Any

from examples.nodegraph.inert import (
    BUILTIN_EXCEPTIONS,
    MAX_DEPTH,
    HashFlooding,
    RemoteGlobal,
    TooDeep,
    TooMuchWork,
    UnsafePickle,
)
from examples.nodegraph.unpickler import SafeUnpickler

__all__ = [
    "MAX_DEPTH",
    "MAX_PICKLE_BYTES",
    "PREFIX",
    "HashFlooding",
    "NotBuiltinValue",
    "RemoteGlobal",
    "SafeUnpickler",
    "TooDeep",
    "TooMuchWork",
    "UnsafePickle",
    "check_builtin",
    "decode",
    "encode",
]

PREFIX = "pck__"
#: the largest pickle (after base64 decoding) :func:`decode` accepts, in bytes
MAX_PICKLE_BYTES = 16 * 1024 * 1024

_PLAIN_TYPES = frozenset(
    {type(None), bool, int, float, complex, str, bytes, bytearray, range, list, tuple, dict, set, frozenset}
)


class NotBuiltinValue(TypeError):
    """A value to send holds a type that is not built in; upstream would have to import it."""

    def __init__(self, where: str, value: Any) -> None:
        self.where = where
        self.value_type = f"{type(value).__module__}.{type(value).__qualname__}"
        super().__init__(f"{where} is a {self.value_type}; only built-in types are pickled")


def decode(text: str) -> Any:
    """Decode a ``pck__`` string with :class:`SafeUnpickler`.

    Parameters
    ----------
    text : str
        ``"pck__"`` followed by base64 of a pickle

    Returns
    -------
    object
        the value: built-in data, built-in exception classes or instances,
        read-only tokens for the inert built-in constructors, and
        :class:`RemoteGlobal` stand-ins for anything else.

    Raises
    ------
    TooMuchWork
        (an :class:`UnsafePickle`) when decoding would take more work or memory
        than the pickle's size allows.
    HashFlooding
        (an :class:`UnsafePickle`) when a set or dict holds too many keys of one hash.
    TooDeep
        (an :class:`UnsafePickle`) when the value nests deeper than :data:`MAX_DEPTH`
        or contains itself.
    UnsafePickle
        when the text is not base64 of a pickle, or too large.
    """
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise UnsafePickle("the text does not start with 'pck__'")
    if len(text) > 4 * (MAX_PICKLE_BYTES // 3) + len(PREFIX) + 4:
        raise UnsafePickle(f"larger than {MAX_PICKLE_BYTES} bytes")
    try:
        data = base64.b64decode(text[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as error:
        raise UnsafePickle(f"not base64 ({error})") from None
    try:
        return SafeUnpickler(io.BytesIO(data)).load()
    except UnsafePickle:
        raise
    except Exception as error:  # a malformed pickle raises almost anything
        raise UnsafePickle(f"not a valid pickle ({type(error).__name__}: {error})") from None


def check_builtin(value: Any, where: str = "the value", depth: int = 0) -> None:
    """Check that ``value`` is built only of built-in types (exactly, not subclasses).

    Built-in exception classes (an ``ErrorValue`` carries one) and instances
    are allowed too.

    Raises
    ------
    NotBuiltinValue
        naming the first offending part.
    """
    kind = type(value)
    if depth > 100:
        raise NotBuiltinValue(f"{where} (nested deeper than 100)", value)
    if kind in (list, tuple, set, frozenset):
        for index, item in enumerate(value):
            check_builtin(item, f"{where}[{index}]", depth + 1)
    elif kind is dict:
        for key, item in value.items():
            check_builtin(key, f"{where} key {key!r:.40}", depth + 1)
            check_builtin(item, f"{where}[{key!r:.40}]", depth + 1)
    elif kind is type:
        if BUILTIN_EXCEPTIONS.get(value.__name__) is not value:
            raise NotBuiltinValue(where, value)
    elif kind is slice:
        check_builtin((value.start, value.stop, value.step), where, depth + 1)
    elif BUILTIN_EXCEPTIONS.get(kind.__name__) is kind:
        reduced = value.__reduce__()  # not vars(): that would add an empty __dict__ to the pickle
        check_builtin(reduced[1], f"{where}.args", depth + 1)
        if len(reduced) > 2:
            check_builtin(reduced[2], f"{where} attributes", depth + 1)
    elif kind not in _PLAIN_TYPES:
        raise NotBuiltinValue(where, value)


def encode(value: Any, where: str = "the value") -> str:
    """Pickle a value made of built-in types into a ``pck__`` string, as upstream does.

    Raises
    ------
    NotBuiltinValue
        when part of ``value`` is not a built-in type.
    """
    check_builtin(value, where)
    return PREFIX + base64.b64encode(pickle.dumps(value)).decode("ascii")
