"""What a decoded ``pck__`` pickle may hold, what building it costs, and how deep it may nest.

:class:`~examples.nodegraph.unpickler.SafeUnpickler` builds only plain
built-in data, built-in exception classes and instances, the read-only
:class:`Constructor` tokens, and :class:`RemoteGlobal` stand-ins; this module
defines those, the errors that refuse a pickle, the costs the unpickler
charges, and the depth check (:func:`check_depth`) a decoded value passes.
"""

from __future__ import annotations

import builtins
import sys
from typing import Any, Callable, Iterator

#: how deep a decoded value may nest; pydantic_core's JSON parser refuses about this depth too
MAX_DEPTH = 200
#: the work a pickle may take, per byte of it and whatever its size (see examples.nodegraph.unpickler)
WORK_PER_BYTE = 32
WORK_FLOOR = 1 << 20
#: the most keys of one hash value a set, frozenset or dict may hold
MAX_SHARED_HASH = 8

# Costs, in units of roughly one byte allocated
CALL = 64  # an object made by a call, or changed by BUILD
CLASS = 2048  # a stand-in class
ITEM = 8  # an element handed to a call (a reference)
KEY = 32  # a key added to a set or dict (its slot in the table)
#: what the opcodes that make an object cost (about its size); a literal adds its own length
MADE = {
    **dict.fromkeys(["INT", "BININT", "BININT2", "LONG", "LONG1", "LONG4"], 32),
    **dict.fromkeys(["FLOAT", "BINFLOAT"], 24),
    **dict.fromkeys(["STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE"], 49),
    **dict.fromkeys(["SHORT_BINUNICODE", "BINUNICODE8"], 49),
    **dict.fromkeys(["BINBYTES", "SHORT_BINBYTES", "BINBYTES8"], 33),
    **{"BYTEARRAY8": 57, "EMPTY_LIST": 56, "LIST": 56, "EMPTY_DICT": 64, "DICT": 64},
    **{"EMPTY_SET": 216, "FROZENSET": 216, "TUPLE": 40, "TUPLE1": 48, "TUPLE2": 56, "TUPLE3": 64},
}

BUILTIN_EXCEPTIONS = {
    name: value
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, Exception)
}
EXCEPTION_TYPES = frozenset(BUILTIN_EXCEPTIONS.values())
# str and bytes hash with the process's secret key, unless PYTHONHASHSEED turned that off
SECRET_HASHES = (str, bytes) if sys.flags.hash_randomization else ()
# an int this small hashes to itself (but -1), so no two of them share a hash
DISTINCT_HASHES = 1 << 60


class UnsafePickle(ValueError):
    """A ``pck__`` value that cannot be decoded (bad base64, bad pickle, too large)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"refused a pck__ value: {reason}")


class TooMuchWork(UnsafePickle):
    """Decoding the pickle would take more work (or memory) than its size allows."""

    def __init__(self, what: str, size: int, budget: int) -> None:
        self.what, self.size, self.budget = what, size, budget
        super().__init__(f"{what} takes more than the {budget} units of work a {size}-byte pickle allows")


class HashFlooding(UnsafePickle):
    """A set or dict whose keys share one hash: building it would take quadratic time."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind, self.limit = kind, limit
        super().__init__(f"a {kind} with more than {limit} keys of one hash (hash flooding)")


class TooDeep(UnsafePickle):
    """A value nested deeper than :data:`MAX_DEPTH`, or a container that contains itself."""

    def __init__(self, limit: int, cyclic: bool = False) -> None:
        self.limit, self.cyclic = limit, cyclic
        super().__init__("a container that contains itself" if cyclic else f"nested deeper than {limit}")


class RemoteGlobal:
    """Stand-in for a global a pickle named that is not allowed to resolve.

    Subclasses are made per name (and pickle) by :class:`SafeUnpickler`;
    ``qualified_name`` is ``module.name`` as the pickle spelled it. Instances
    only record what the pickle passed: ``args``, ``kwargs`` and ``state``.
    """

    __slots__ = ("args", "kwargs", "state")
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    state: Any
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


def stand_in(module: str, name: str) -> type[RemoteGlobal]:
    namespace = {"qualified_name": f"{module}.{name}", "__module__": module, "__slots__": ()}
    return type(name, (RemoteGlobal,), namespace)


class Constructor:
    """A read-only token for an inert built-in constructor a pickle may name (``builtins.set``...).

    Calling it checks the arguments and builds the value; it has no state a
    pickle (``BUILD``) or anyone else could change.
    """

    __slots__ = ("name", "_build")
    name: str
    _build: Callable[..., Any]

    def __init__(self, name: str, build: Callable[..., Any]) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_build", build)

    def __setattr__(self, attribute: str, value: Any) -> None:
        raise AttributeError(f"builtins.{self.name} of a decoded pickle is read-only")

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __call__(self, *args: Any) -> Any:
        return self._build(*args)

    def __repr__(self) -> str:
        return f"<builtins.{self.name} of a decoded pickle>"


def _complex(*args: Any) -> complex:
    if len(args) > 2 or not all(type(arg) in (int, float, str) for arg in args):
        raise UnsafePickle("complex() with arguments that are not numbers or text")
    return complex(*args)


def _collection(kind: type) -> Callable[..., Any]:
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


_BUILDERS: dict[str, Callable[..., Any]] = {
    "complex": _complex,
    "set": _collection(set),
    "frozenset": _collection(frozenset),
    "bytearray": _bytearray,
    "slice": slice,
    "range": range,
}
#: the tokens ``builtins.<name>`` resolves to, shared by every decode: read-only
CONSTRUCTORS = {name: Constructor(name, build) for name, build in _BUILDERS.items()}


def size(value: Any) -> int:
    """What handing ``value`` to a call may copy: its bytes, or its elements' references."""
    kind = type(value)
    if kind in (str, bytes, bytearray):
        return len(value)
    if kind in (list, tuple, dict, set, frozenset):
        return ITEM * len(value)
    return 0


def literal_size(value: Any) -> int:
    """What a literal adds to the cost of making it: its length in bytes, about."""
    if type(value) in (str, bytes, bytearray):
        return len(value)
    if type(value) is int:
        return value.bit_length() // 8
    return 0


def cost(arguments: Any) -> int:
    """The units a call or BUILD with these arguments (a tuple, or a dict of state) is charged."""
    values = arguments.values() if type(arguments) is dict else arguments
    if type(values) not in (tuple, list, type({}.values())):
        return CALL + size(arguments)
    return CALL + ITEM * len(values) + sum(size(value) for value in values)


_LEAVES = frozenset({type(None), bool, int, float, complex, str, bytes, bytearray, range})


def children(value: Any) -> Iterator[Any] | None:
    """The values ``value`` holds, for the depth check; ``None`` for a value that holds none."""
    kind = type(value)
    if kind in (list, tuple, set, frozenset):
        return iter(value)
    if kind is dict:
        return iter([*value.keys(), *value.values()])
    if kind is slice:
        return iter((value.start, value.stop, value.step))
    if isinstance(value, RemoteGlobal):
        return iter([*value.args, *value.kwargs.values(), value.state])
    if kind in EXCEPTION_TYPES:
        reduced = value.__reduce__()  # not __dict__: reading it gives the exception an empty one
        attributes = reduced[2] if len(reduced) > 2 and type(reduced[2]) is dict else {}
        return iter([*value.args, *attributes.values(), value.__cause__, value.__context__])
    return None


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse a value nested deeper than ``limit`` or containing itself, without recursing.

    Raises
    ------
    TooDeep
        naming the limit, or saying the value contains itself.
    """
    heights: dict[int, int] = {}  # id -> height of a container already checked
    on_path: set[int] = set()
    top = children(value)
    if top is None:
        return
    path: list[list[Any]] = [[value, top, 1]]  # [container, its remaining children, its height so far]
    on_path.add(id(value))
    while path:
        frame = path[-1]
        for child in frame[1]:
            if type(child) in _LEAVES:
                continue
            known = heights.get(id(child))
            if known is not None:
                frame[2] = max(frame[2], known + 1)
                continue
            below = children(child)
            if below is None:
                continue
            if id(child) in on_path:
                raise TooDeep(limit, cyclic=True)
            if len(path) >= limit:
                raise TooDeep(limit)
            on_path.add(id(child))
            path.append([child, below, 1])
            break
        else:
            path.pop()
            on_path.discard(id(frame[0]))
            heights[id(frame[0])] = frame[2]
            if frame[2] > limit:
                raise TooDeep(limit)
            if path:
                path[-1][2] = max(path[-1][2], frame[2] + 1)
