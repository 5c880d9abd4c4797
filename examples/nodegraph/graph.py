"""Graphs of nodes: which node feeds which slot, and the plain-Python reference run.

A node is built by a factory at ``init`` (so it may keep state between epochs)
and called once per epoch with the values of its slots; it returns a value for
each of its signals. A slot is fed by ``"<node id>.<signal>"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    factory: Callable[[], Callable[..., dict[str, Any]]]
    signals: list[str]
    slots: dict[str, str] = field(default_factory=dict)  # slot name -> "node.signal"

    @property
    def depends_on(self) -> set[str]:
        return {source.split(".", 1)[0] for source in self.slots.values()}


class Counter:
    def __call__(self, epoch: int, input: dict | None = None) -> dict[str, Any]:
        return {"count": epoch + int((input or {}).get("offset", 0))}


class Square:
    def __call__(self, epoch: int, x: int) -> dict[str, Any]:
        return {"squared": x * x}


class Double:
    def __call__(self, epoch: int, x: int) -> dict[str, Any]:
        return {"doubled": 2 * x}


class Sum:
    def __init__(self) -> None:
        self.total = 0

    def __call__(self, epoch: int, squared: int, doubled: int) -> dict[str, Any]:
        self.total += squared + doubled
        return {"total": self.total}


class NoOp:
    def __call__(self, epoch: int, **slots: Any) -> dict[str, Any]:
        return {"out": epoch}


class GraphError(Exception):
    """Not a built-in exception: it reaches the command node as a RemoteNodeError."""


class Fragile:
    """Raise ValueError at epoch 3 and GraphError at epoch 5; output a value no peer may unpickle at 7."""

    def __call__(self, epoch: int, x: int) -> dict[str, Any]:
        if epoch == 3:
            raise ValueError(f"fragile node refuses epoch {epoch}")
        if epoch == 5:
            raise GraphError("a graph-specific failure", epoch)
        if epoch == 7:
            return {"out": GraphError("not a built-in type")}
        return {"out": x}


def demo_graph() -> list[NodeSpec]:
    """A counter source, a square node, a fan-out branch (double) and a sum sink."""
    return [
        NodeSpec("counter", Counter, ["count"]),
        NodeSpec("square", Square, ["squared"], {"x": "counter.count"}),
        NodeSpec("double", Double, ["doubled"], {"x": "counter.count"}),
        NodeSpec("sum", Sum, ["total"], {"squared": "square.squared", "doubled": "double.doubled"}),
    ]


def noop_graph() -> list[NodeSpec]:
    """The demo graph's shape with nodes that do nothing: what coordination alone costs."""
    return [
        NodeSpec("counter", NoOp, ["out"]),
        NodeSpec("square", NoOp, ["out"], {"x": "counter.out"}),
        NodeSpec("double", NoOp, ["out"], {"x": "counter.out"}),
        NodeSpec("sum", NoOp, ["out"], {"a": "square.out", "b": "double.out"}),
    ]


def fragile_graph() -> list[NodeSpec]:
    return [
        NodeSpec("counter", Counter, ["count"]),
        NodeSpec("fragile", Fragile, ["out"], {"x": "counter.count"}),
    ]


GRAPHS: dict[str, Callable[[], list[NodeSpec]]] = {
    "demo": demo_graph,
    "noop": noop_graph,
    "fragile": fragile_graph,
}


def run_locally(specs: list[NodeSpec], epochs: int, first_epoch: int = 0) -> dict[str, dict[str, Any]]:
    """Run the graph in this process, in dependency order; return each node's last outputs."""
    nodes = {spec.node_id: spec.factory() for spec in specs}
    order = topological(specs)
    outputs: dict[str, dict[str, Any]] = {}
    for epoch in range(first_epoch, first_epoch + epochs):
        for spec in order:
            slots = {
                slot: outputs[source.split(".")[0]][source.split(".")[1]]
                for slot, source in spec.slots.items()
            }
            outputs[spec.node_id] = (
                nodes[spec.node_id](epoch, **slots) if slots else nodes[spec.node_id](epoch)
            )
    return outputs


def topological(specs: list[NodeSpec]) -> list[NodeSpec]:
    """The specs with every node after the nodes it depends on."""
    by_id = {spec.node_id: spec for spec in specs}
    done: list[NodeSpec] = []
    seen: set[str] = set()

    def visit(spec: NodeSpec, path: tuple[str, ...]) -> None:
        if spec.node_id in seen:
            return
        if spec.node_id in path:
            raise ValueError(f"the graph has a cycle through {spec.node_id!r}")
        for dependency in sorted(spec.depends_on):
            if dependency not in by_id:
                raise ValueError(f"{spec.node_id!r} depends on unknown node {dependency!r}")
            visit(by_id[dependency], (*path, spec.node_id))
        seen.add(spec.node_id)
        done.append(spec)

    for spec in specs:
        visit(spec, ())
    return done
