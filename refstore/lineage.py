"""Lineage graphs: the runs and versions around one version, up and down.

The graph is bipartite and directed the way data flows: a version points at
each run that used it, and a run at each version it logged. Walking *up*
from a version follows its producer run, that run's inputs, their producers,
and so on; walking *down* follows the runs that used it, their outputs, and
so on. ``depth`` counts runs: depth 1 reaches the producer and its inputs,
and the consumers and their outputs.

A graph renders as text (two trees), JSON, Graphviz dot or Mermaid. Every
node is visited once, so a graph that loops (which resumed runs can build)
still ends.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any, Literal

from refstore.catalog.base import Catalog, RunRecord, VersionRecord

__all__ = ["FORMATS", "Edge", "LineageGraph", "Node", "walk"]

FORMATS = ("text", "json", "dot", "mermaid")
NodeKind = Literal["artifact", "run"]


@dataclasses.dataclass(frozen=True)
class Node:
    id: str  # "artifact:entity/project/name:vN" or "run:entity/project/id"
    kind: NodeKind
    label: str
    detail: str  # the artifact's type, or the run's job type and state


@dataclasses.dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: Literal["used", "logged"]


@dataclasses.dataclass
class LineageGraph:
    root: str
    depth: int
    nodes: dict[str, Node] = dataclasses.field(default_factory=dict)
    edges: list[Edge] = dataclasses.field(default_factory=list)

    def render(self, format: str) -> str:
        renderers = {
            "text": self.to_text,
            "json": self.to_json,
            "dot": self.to_dot,
            "mermaid": self.to_mermaid,
        }
        return renderers[format]()

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "depth": self.depth,
            "nodes": [dataclasses.asdict(node) for node in self.nodes.values()],
            "edges": [dataclasses.asdict(edge) for edge in self.edges],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_text(self) -> str:
        root = self.nodes[self.root]
        lines = [f"{root.label} ({root.detail})"]
        for direction, arrow in (("up", "<-"), ("down", "->")):
            tree = list(self._tree(self.root, direction, arrow, 1, {self.root}))
            lines.append(f"{direction}:" + ("" if tree else " (nothing)"))
            lines.extend(tree)
        return "\n".join(lines)

    def to_dot(self) -> str:
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for node in self.nodes.values():
            shape = "box" if node.kind == "artifact" else "ellipse"
            style = ", style=bold" if node.id == self.root else ""
            label = _dot_quote(f"{node.label}\n{node.detail}")
            lines.append(
                f"  {_dot_quote(node.id)} [shape={shape}{style}, label={label}];"
            )
        lines.extend(
            f"  {_dot_quote(edge.source)} -> {_dot_quote(edge.target)} "
            f"[label={_dot_quote(edge.kind)}];"
            for edge in self.edges
        )
        lines.append("}")
        return "\n".join(lines)

    def to_mermaid(self) -> str:
        ids = {node_id: f"n{index}" for index, node_id in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for node in self.nodes.values():
            text = _mermaid_text(f"{node.label}<br/>{node.detail}")
            shape = f'["{text}"]' if node.kind == "artifact" else f'(["{text}"])'
            lines.append(f"  {ids[node.id]}{shape}")
        lines.extend(
            f"  {ids[edge.source]} -->|{edge.kind}| {ids[edge.target]}"
            for edge in self.edges
        )
        lines.append(f"  style {ids[self.root]} stroke-width:3px")
        return "\n".join(lines)

    def _tree(
        self, node_id: str, direction: str, arrow: str, level: int, seen: set[str]
    ) -> Iterator[str]:
        for edge in self.edges:
            near, far = (
                (edge.target, edge.source)
                if direction == "up"
                else (edge.source, edge.target)
            )
            if near != node_id:
                continue
            node = self.nodes[far]
            again = " (shown above)" if far in seen else ""
            verb = _verb(edge.kind, direction)
            yield f"{'   ' * level}{arrow} {verb} {node.label} ({node.detail}){again}"
            if not again:
                seen.add(far)
                yield from self._tree(far, direction, arrow, level + 1, seen)

    def _add(self, node: Node) -> bool:
        """Add ``node``; False when it was already there."""
        if node.id in self.nodes:
            return False
        self.nodes[node.id] = node
        return True

    def _link(self, edge: Edge) -> None:
        if edge not in self.edges:
            self.edges.append(edge)


def walk(catalog: Catalog, start: VersionRecord, depth: int = 1) -> LineageGraph:
    """The lineage graph ``depth`` runs up and down from ``start``."""
    graph = LineageGraph(root=_version_node(start).id, depth=depth)
    graph._add(_version_node(start))
    _walk_up(catalog, graph, [start], depth)
    _walk_down(catalog, graph, [start], depth)
    return graph


def _walk_up(
    catalog: Catalog, graph: LineageGraph, frontier: list[VersionRecord], depth: int
) -> None:
    for _ in range(depth):
        inputs: list[VersionRecord] = []
        for version in frontier:
            run = catalog.logged_by(version.project, version.name, version.version)
            if run is None:
                continue
            graph._link(Edge(_run_node(run).id, _version_node(version).id, "logged"))
            if not graph._add(_run_node(run)):
                continue
            for used in catalog.used_versions(run.project, run.id):
                graph._link(Edge(_version_node(used).id, _run_node(run).id, "used"))
                if graph._add(_version_node(used)):
                    inputs.append(used)
        frontier = inputs


def _walk_down(
    catalog: Catalog, graph: LineageGraph, frontier: list[VersionRecord], depth: int
) -> None:
    for _ in range(depth):
        outputs: list[VersionRecord] = []
        for version in frontier:
            for run in catalog.used_by(version.project, version.name, version.version):
                graph._link(Edge(_version_node(version).id, _run_node(run).id, "used"))
                if not graph._add(_run_node(run)):
                    continue
                for logged in catalog.logged_versions(run.project, run.id):
                    edge = Edge(_run_node(run).id, _version_node(logged).id, "logged")
                    graph._link(edge)
                    if graph._add(_version_node(logged)):
                        outputs.append(logged)
        frontier = outputs


def _version_node(record: VersionRecord) -> Node:
    return Node(f"artifact:{record.path}", "artifact", record.path, record.type)


def _run_node(record: RunRecord) -> Node:
    detail = ", ".join(filter(None, [record.job_type, record.state]))
    return Node(f"run:{record.path}", "run", f"run {record.path}", detail)


def _verb(kind: str, direction: str) -> str:
    if direction == "up":
        return "logged by" if kind == "logged" else "used"
    return "used by" if kind == "used" else "logged"


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


_MERMAID_UNSAFE = re.compile(r'["<>#]')


def _mermaid_text(text: str) -> str:
    # Mermaid reads "#34;"-style entity codes; a raw quote would end the label.
    parts = text.split("<br/>")
    escaped = [
        _MERMAID_UNSAFE.sub(lambda m: f"#{ord(m.group())};", part) for part in parts
    ]
    return "<br/>".join(escaped)
