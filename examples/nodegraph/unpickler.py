"""The opcodes of a received pickle, given their meaning here, one by one, and counted.

Nothing of :mod:`pickle`'s own unpickler runs: :func:`pickletools.genops`, the
standard library's documented pickle parser, splits the bytes into opcodes and
their literal arguments, and :class:`SafeUnpickler` gives every opcode its
meaning itself. That is what lets it keep the promises of
:mod:`examples.nodegraph.pickles`:

- **Bounded work and memory.** Everything an opcode makes or does beyond
  moving references is charged against a budget of
  :data:`~examples.nodegraph.inert.WORK_FLOOR` plus
  :data:`~examples.nodegraph.inert.WORK_PER_BYTE` units per byte of the
  pickle (a unit is roughly a byte allocated): every object made (a literal,
  an empty set...), every call and ``BUILD``, the elements and bytes its
  arguments hand over (``bytearray(data)`` copies them), every stand-in
  class, every key added to a set or dict, and hashing it (a tuple key is
  hashed whole each time it is added, and a pickle can share one tuple many
  times over). Values ``pickle.dumps`` makes of built-in data take less than
  half the budget; a value that would take more than its share, such as
  100,000 empty sets, is refused.
- **One stand-in class per qualified name** and pickle, not one per lookup.
- **No hash flooding.** A set, frozenset or dict may hold at most
  :data:`~examples.nodegraph.inert.MAX_SHARED_HASH` keys with the same hash
  (ints, floats and tuples hash predictably; ``str`` and ``bytes`` hash with
  the process's secret key).
- **Nothing mutable of the module's own.** ``builtins.set`` and the other
  inert constructors resolve to read-only tokens; ``BUILD`` applies only to a
  built-in exception instance or a stand-in instance, and ``APPEND``,
  ``SETITEM`` and ``ADDITEMS`` only to a list, dict or set.
- **Extension codes** (``EXT1/2/4``) are looked up in :mod:`copyreg`'s
  registry and resolved through :meth:`SafeUnpickler.find_class`; the
  process-wide cache of resolved codes is neither read nor written.
- **Nesting** deeper than :data:`~examples.nodegraph.inert.MAX_DEPTH` (what
  the JSON parser refuses too), or a container that contains itself, is
  refused (:func:`~examples.nodegraph.inert.check_depth`).
"""

from __future__ import annotations

import copyreg
import io
import pickle
import pickletools
from typing import Any, BinaryIO, cast

from examples.nodegraph.inert import (
    BUILTIN_EXCEPTIONS,
    CLASS,
    CONSTRUCTORS,
    DISTINCT_HASHES,
    EXCEPTION_TYPES,
    KEY,
    MADE,
    MAX_DEPTH,
    MAX_SHARED_HASH,
    SECRET_HASHES,
    WORK_FLOOR,
    WORK_PER_BYTE,
    Constructor,
    HashFlooding,
    RemoteGlobal,
    TooDeep,
    TooMuchWork,
    UnsafePickle,
    check_depth,
    cost,
    literal_size,
    stand_in,
)

_MAX_MEMO = 1 << 32  # one past the largest memo index LONG_BINPUT can spell
_LITERALS = frozenset(
    "INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT STRING UNICODE BINUNICODE "
    "SHORT_BINUNICODE BINUNICODE8 BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8".split()
)
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}
_IGNORED = frozenset({"PROTO", "FRAME"})
_PYTHON2_STRINGS = frozenset({"BINSTRING", "SHORT_BINSTRING"})


def _makes_instances(value: Any) -> bool:
    """A built-in exception class or a stand-in class: what REDUCE and NEWOBJ may call."""
    return isinstance(value, type) and (value in EXCEPTION_TYPES or issubclass(value, RemoteGlobal))


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    return f"a {type(value).__name__}"


class SafeUnpickler:
    """An unpickler that imports nothing and bounds its work: see :mod:`examples.nodegraph.unpickler`.

    Parameters
    ----------
    file : binary file
        holds the pickle; it is read whole (the caller caps its size).
    """

    def __init__(self, file: BinaryIO) -> None:
        self._data = file.read()
        self._budget = WORK_FLOOR + WORK_PER_BYTE * len(self._data)
        self._left = self._budget
        self._stand_ins: dict[str, type[RemoteGlobal]] = {}
        self._hashes: dict[int, tuple[Any, dict[int, int]]] = {}  # id -> (container, hash -> count)
        self._stack: list[Any] = []
        self._marks: list[int] = []
        self._memo: list[Any] = []  # indices 0, 1, 2...: what pickle.dumps writes
        self._sparse: dict[int, Any] = {}  # any other index a hand-written pickle uses

    # -- what resolves, and what it costs ----------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        """Resolve a global, importing nothing: a built-in exception class, a token or a stand-in."""
        if type(module) is not str or type(name) is not str:
            raise UnsafePickle("a global named by something other than text")
        if module == "builtins":
            if name in BUILTIN_EXCEPTIONS:
                return BUILTIN_EXCEPTIONS[name]
            if name in CONSTRUCTORS:
                return CONSTRUCTORS[name]
        qualified = f"{module}.{name}"
        kind = self._stand_ins.get(qualified)
        if kind is None:
            self._spend(CLASS, "making stand-in classes")
            kind = self._stand_ins[qualified] = stand_in(module, name)
        return kind

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle("persistent ids are not supported")

    def _spend(self, units: int, what: str) -> None:
        self._left -= units
        if self._left < 0:
            raise TooMuchWork(what, len(self._data), self._budget)

    def _hash_work(self, key: Any) -> int:
        """What hashing ``key`` takes: a tuple is hashed whole, every time, however much it shares.

        Each distinct tuple is measured once (its work and its height are
        remembered), so a tuple that shares its parts, tiny to spell and
        ``2**40`` to hash, is priced at once. A tuple nested deeper than
        :data:`MAX_DEPTH` is refused here: hashing it would recurse in C
        without a limit and crash the process.
        """
        measured: dict[int, tuple[int, int]] = {}  # id(tuple) -> (work, height); ``key`` keeps them alive

        def measure(item: Any, depth: int) -> tuple[int, int]:
            kind = type(item)
            if kind is tuple:
                known = measured.get(id(item))
                if known is None:
                    if depth > MAX_DEPTH:
                        raise TooDeep(MAX_DEPTH)
                    work, height = 1, 1
                    for inner in item:
                        inner_work, inner_height = measure(inner, depth + 1)
                        work += inner_work
                        height = max(height, inner_height + 1)
                    known = measured[id(item)] = (work, height)
                if depth + known[1] - 1 > MAX_DEPTH:
                    raise TooDeep(MAX_DEPTH)
                return known
            if kind is int:
                return 1 + item.bit_length() // 8, 0
            if kind in (str, bytes, frozenset):  # hashed once, then cached
                return 1 + len(item) // 8, 0
            if kind in (range, slice):
                parts = [measure(part, depth) for part in (item.start, item.stop, item.step)]
                return 1 + sum(work for work, _ in parts), max(height for _, height in parts)
            return 1, 0

        return measure(key, 1)[0]

    def _admit(self, container: Any, key: Any) -> None:
        """Charge for hashing ``key`` into ``container``, and refuse a key that floods one hash."""
        self._spend(KEY + self._hash_work(key), "hashing keys")
        digest = hash(key)
        if isinstance(key, SECRET_HASHES) or (
            type(key) in (int, bool) and -DISTINCT_HASHES < key < DISTINCT_HASHES
        ):
            return
        entry = self._hashes.get(id(container))
        if entry is None:  # the entry keeps the container alive, so its id stays its own
            entry = self._hashes[id(container)] = (container, {})
        seen = entry[1].get(digest, 0)
        if seen >= MAX_SHARED_HASH and key not in container:
            raise HashFlooding(type(container).__name__, MAX_SHARED_HASH)
        if not seen:
            self._spend(KEY, "tracking key hashes")
        entry[1][digest] = seen + 1

    def _new_set(self, kind: type, items: Any = ()) -> Any:
        if type(items) not in (list, tuple, set, frozenset, dict):
            raise UnsafePickle(f"{kind.__name__}() of a {type(items).__name__}")
        made: set[Any] = set()
        for item in items:
            self._admit(made, item)
            made.add(item)
        return made if kind is set else frozenset(made)

    def _call(self, func: Any, args: Any, kwargs: Any = None) -> Any:
        if type(args) is not tuple or (kwargs is not None and type(kwargs) is not dict):
            raise UnsafePickle("call arguments that are not a tuple (and a dict)")
        self._spend(cost(args) + (cost(kwargs) if kwargs else 0), "calls")
        if type(func) is Constructor:
            if func.name in ("set", "frozenset"):
                return self._new_set(set if func.name == "set" else frozenset, *args)
            return func(*args)
        if _makes_instances(func):
            return func(*args, **(kwargs or {}))
        raise UnsafePickle(f"a call of {_describe(func)}")

    def _new(self, cls: Any, args: Any, kwargs: Any = None) -> Any:
        if type(args) is not tuple or (kwargs is not None and type(kwargs) is not dict):
            raise UnsafePickle("NEWOBJ arguments that are not a tuple (and a dict)")
        if not _makes_instances(cls):
            raise UnsafePickle(f"NEWOBJ of {_describe(cls)}")
        self._spend(cost(args) + (cost(kwargs) if kwargs else 0), "calls")
        return cls.__new__(cls, *args, **(kwargs or {}))

    def _instantiate(self, cls: Any, args: list[Any]) -> Any:
        if args or not isinstance(cls, type):
            return self._call(cls, tuple(args))
        return self._new(cls, ())

    def _build(self, target: Any, state: Any) -> None:
        self._spend(cost(state), "BUILD")
        if isinstance(target, RemoteGlobal):
            target.__setstate__(state)
        elif type(target) in EXCEPTION_TYPES and (state is None or type(state) is dict):
            target.__setstate__(state)  # plain attributes; __class__ and the like refuse themselves
        else:
            raise UnsafePickle(f"BUILD on {_describe(target)} with {_describe(state)}")

    # -- the stack ---------------------------------------------------------------------------

    def _pop_mark(self) -> list[Any]:
        if not self._marks:
            raise UnsafePickle("a MARK is missing")
        start = self._marks.pop()
        items = self._stack[start:]
        del self._stack[start:]
        return items

    def _top(self, kind: type, opcode: str) -> Any:
        target = self._stack[-1]
        if type(target) is not kind:
            raise UnsafePickle(f"{opcode} on {_describe(target)}")
        return target

    def _set_items(self, target: dict[Any, Any], items: list[Any]) -> None:
        if len(items) % 2:
            raise UnsafePickle("SETITEMS with an odd number of items")
        for index in range(0, len(items), 2):
            self._admit(target, items[index])
            target[items[index]] = items[index + 1]

    def _put(self, index: Any) -> None:
        if type(index) not in (int, bool) or not 0 <= index < _MAX_MEMO:
            raise UnsafePickle(f"memo index {index!r:.40} out of range")
        if index < len(self._memo):
            self._memo[index] = self._stack[-1]
        elif index == len(self._memo) and not self._sparse:
            self._memo.append(self._stack[-1])
        else:
            self._spend(2 * KEY, "memoizing")
            self._sparse[int(index)] = self._stack[-1]

    def _get(self, index: Any) -> Any:
        if type(index) in (int, bool) and 0 <= index < len(self._memo):
            return self._memo[index]
        if index not in self._sparse:
            raise UnsafePickle(f"memo index {index!r:.40} was never set")
        return self._sparse[index]

    def load(self) -> Any:
        """Run the pickle's opcodes and return the value it builds.

        Returns
        -------
        object
            built-in data, built-in exception classes and instances, constructor
            tokens and :class:`RemoteGlobal` stand-ins.

        Raises
        ------
        UnsafePickle
            or one of its subclasses (:class:`~examples.nodegraph.inert.TooMuchWork`,
            :class:`~examples.nodegraph.inert.HashFlooding`,
            :class:`~examples.nodegraph.inert.TooDeep`) naming what was refused;
            a malformed pickle raises what its parser or the opcode raised.
        """
        stack = self._stack
        for opcode, parsed, _ in pickletools.genops(io.BytesIO(self._data)):
            name, arg = opcode.name, cast(Any, parsed)
            price = MADE.get(name)
            if price is not None:
                self._spend(price + literal_size(arg), "making objects")
            if name in _LITERALS:
                stack.append(arg)
            elif name in _CONSTANTS:
                stack.append(_CONSTANTS[name])
            elif name in ("BINGET", "GET", "LONG_BINGET"):
                stack.append(self._get(arg))
            elif name in ("BINPUT", "PUT", "LONG_BINPUT"):
                self._put(arg)
            elif name == "MEMOIZE":
                self._put(len(self._memo) + len(self._sparse))
            elif name == "MARK":
                self._marks.append(len(stack))
            elif name == "APPEND":
                value = stack.pop()
                self._top(list, name).append(value)
            elif name == "APPENDS":
                items = self._pop_mark()
                self._top(list, name).extend(items)
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                self._set_items(self._top(dict, name), [key, value])
            elif name == "SETITEMS":
                items = self._pop_mark()
                self._set_items(self._top(dict, name), items)
            elif name == "ADDITEMS":
                items = self._pop_mark()
                target = self._top(set, name)
                for item in items:
                    self._admit(target, item)
                    target.add(item)
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "EMPTY_SET":
                stack.append(set())
            elif name == "LIST":
                stack.append(self._pop_mark())
            elif name == "TUPLE":
                stack.append(tuple(self._pop_mark()))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                count = int(name[-1])
                if len(stack) < count:
                    raise UnsafePickle(f"{name} on a stack of {len(stack)}")
                packed = tuple(stack[-count:])
                del stack[-count:]
                stack.append(packed)
            elif name == "DICT":
                made: dict[Any, Any] = {}
                self._set_items(made, self._pop_mark())
                stack.append(made)
            elif name == "FROZENSET":
                stack.append(self._new_set(frozenset, self._pop_mark()))
            elif name in _PYTHON2_STRINGS:
                if not arg.isascii():  # as pickle.loads with its default encoding="ASCII"
                    raise UnsafePickle("a Python 2 str that is not ASCII")
                stack.append(arg)
            elif name in ("GLOBAL", "INST"):
                module, _, qualname = arg.partition(" ")
                found = self.find_class(module, qualname)
                stack.append(found if name == "GLOBAL" else self._instantiate(found, self._pop_mark()))
            elif name == "STACK_GLOBAL":
                qualname, module = stack.pop(), stack.pop()
                stack.append(self.find_class(module, qualname))
            elif name in ("EXT1", "EXT2", "EXT4"):
                # copyreg's registry, not its cache (which pickle.loads fills and trusts)
                key = copyreg._inverted_registry.get(arg)  # type: ignore[attr-defined]
                if key is None:
                    raise UnsafePickle(f"extension code {arg} is not registered")
                stack.append(self.find_class(*key))
            elif name == "REDUCE":
                args = stack.pop()
                stack.append(self._call(stack.pop(), args))
            elif name == "NEWOBJ":
                args = stack.pop()
                stack.append(self._new(stack.pop(), args))
            elif name == "NEWOBJ_EX":
                kwargs, args = stack.pop(), stack.pop()
                stack.append(self._new(stack.pop(), args, kwargs))
            elif name == "OBJ":
                items = self._pop_mark()
                if not items:
                    raise UnsafePickle("OBJ without a class")
                stack.append(self._instantiate(items[0], items[1:]))
            elif name == "BUILD":
                state = stack.pop()
                self._build(stack[-1], state)
            elif name == "DUP":
                stack.append(stack[-1])
            elif name == "POP":
                if self._marks and len(stack) == self._marks[-1]:
                    self._marks.pop()
                else:
                    stack.pop()
            elif name == "POP_MARK":
                self._pop_mark()
            elif name in ("PERSID", "BINPERSID"):
                self.persistent_load(arg if name == "PERSID" else stack.pop())
            elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
                raise UnsafePickle("out-of-band buffers are not supported")
            elif name == "PROTO":
                if arg > pickle.HIGHEST_PROTOCOL:
                    raise UnsafePickle(f"unsupported pickle protocol {arg}")
            elif name == "STOP":
                value = stack.pop()
                check_depth(value)
                return value
            elif name not in _IGNORED:
                raise UnsafePickle(f"the opcode {name} is not supported")
        raise UnsafePickle("the pickle has no STOP")  # genops raises first; kept for the type checker
