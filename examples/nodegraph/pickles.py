"""``pck__`` values: how noob carries what JSON cannot, and why reading them here is safe.

Upstream noob sends a value that JSON cannot represent as the string
``"pck__" + base64(pickle.dumps(value))``; every error travels that way, as a
pickled ``ErrorValue`` dict whose ``err_type`` is the exception *class*.
``pickle.loads`` on bytes from a peer runs whatever callable the peer names
(``os.system``, ``subprocess.Popen``, ``builtins.eval``), so this module never
calls it. The safety argument, in four steps:

1. A pickle can only reach code through a *global*: the ``GLOBAL``,
   ``STACK_GLOBAL``, ``INST`` and ``EXT*`` opcodes all resolve a name through
   ``Unpickler.find_class``, and ``REDUCE``, ``NEWOBJ``, ``OBJ`` and ``BUILD``
   can only call or instantiate what such a lookup returned (or a built-in
   container the pickle built from literals). ``persistent_load`` is not
   defined, so persistent ids are refused.
2. :class:`SafeUnpickler` overrides ``find_class`` and **imports nothing**: a
   name in ``builtins`` that is an exception class (a subclass of
   ``Exception``) resolves to that class, a few inert built-in constructors
   resolve to wrappers that check their arguments (``complex``, ``set``,
   ``frozenset``, ``bytearray``, ``slice``, ``range``), and every other name
   becomes a fresh :class:`RemoteGlobal` subclass that only records its
   qualified name, the arguments it was called with and any state.
3. Calling a built-in exception class stores its arguments and nothing else;
   ``BUILD`` on an instance sets plain attributes; the wrappers refuse
   arguments that would allocate without bound (``bytearray(10**12)``,
   ``set(range(10**18))``). So a decoded pickle is plain data, built-in
   exception objects and inert stand-ins, and nothing ran while decoding it.
4. Sizes stay bounded by the frame, which the sockets cap
   (:data:`MAX_PICKLE_BYTES` for one value here).

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
import builtins
import io
import pickle
from typing import Any

PREFIX = "pck__"
#: the largest pickle (after base64 decoding) :func:`decode` accepts, in bytes
MAX_PICKLE_BYTES = 16 * 1024 * 1024

_PLAIN_TYPES = frozenset(
    {type(None), bool, int, float, complex, str, bytes, bytearray, range, list, tuple, dict, set, frozenset}
)
_BUILTIN_EXCEPTIONS = {
    name: value
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, Exception)
}


class UnsafePickle(ValueError):
    """A ``pck__`` value that cannot be decoded (bad base64, bad pickle, too large)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"refused a pck__ value: {reason}")


class NotBuiltinValue(TypeError):
    """A value to send holds a type that is not built in; upstream would have to import it."""

    def __init__(self, where: str, value: Any) -> None:
        self.where = where
        self.value_type = f"{type(value).__module__}.{type(value).__qualname__}"
        super().__init__(f"{where} is a {self.value_type}; only built-in types are pickled")


class RemoteGlobal:
    """Stand-in for a global a pickle named that is not allowed to resolve.

    Subclasses are made per name by :class:`SafeUnpickler`; ``qualified_name``
    is ``module.name`` as the pickle spelled it. Instances only record what the
    pickle passed: ``args`` and ``state``.
    """

    qualified_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> RemoteGlobal:
        instance = super().__new__(cls)
        instance.args = args
        instance.kwargs = kwargs
        instance.state = None
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<remote {self.qualified_name}{self.args!r}>"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, RemoteGlobal)
            and self.qualified_name == other.qualified_name
            and self.args == other.args
            and self.state == other.state
        )

    __hash__ = None  # type: ignore[assignment]


def _stand_in(module: str, name: str) -> type[RemoteGlobal]:
    return type(name, (RemoteGlobal,), {"qualified_name": f"{module}.{name}", "__module__": module})


def _complex(*args: Any) -> complex:
    if not all(type(arg) in (int, float, str) for arg in args):
        raise UnsafePickle("complex() with arguments that are not numbers or text")
    return complex(*args)


def _container(kind: type) -> Any:
    def build(items: Any = ()) -> Any:
        if type(items) not in (list, tuple, set, frozenset, dict):
            raise UnsafePickle(f"{kind.__name__}() of a {type(items).__name__}")
        return kind(items)

    return build


def _bytearray(data: Any = b"", *encoding: Any) -> bytearray:
    if type(data) is str and encoding == ("latin-1",):  # protocol 0-2 spell bytes this way
        return bytearray(data, "latin-1")
    if type(data) not in (bytes, bytearray) or encoding:
        raise UnsafePickle("bytearray() of something other than bytes")
    return bytearray(data)


_CONSTRUCTORS = {
    "complex": _complex,
    "set": _container(set),
    "frozenset": _container(frozenset),
    "bytearray": _bytearray,
    "slice": slice,
    "range": range,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that imports nothing: see the module's safety argument."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins":
            if name in _BUILTIN_EXCEPTIONS:
                return _BUILTIN_EXCEPTIONS[name]
            if name in _CONSTRUCTORS:
                return _CONSTRUCTORS[name]
        return _stand_in(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle("persistent ids are not supported")


def decode(text: str) -> Any:
    """Decode a ``pck__`` string with :class:`SafeUnpickler`.

    Parameters
    ----------
    text : str
        ``"pck__"`` followed by base64 of a pickle

    Returns
    -------
    object
        the value: built-in data, built-in exception classes or instances, and
        :class:`RemoteGlobal` stand-ins for anything else.

    Raises
    ------
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
        if _BUILTIN_EXCEPTIONS.get(value.__name__) is not value:
            raise NotBuiltinValue(where, value)
    elif kind is slice:
        check_builtin((value.start, value.stop, value.step), where, depth + 1)
    elif _BUILTIN_EXCEPTIONS.get(kind.__name__) is kind:
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
