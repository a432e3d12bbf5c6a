"""Lineage: which run made a version, from which inputs, and who used it afterwards.

The graph has two kinds of nodes, runs and versions, and two kinds of edges: a version
is *used* by a run (version -> run) and a run *logged* a version (run -> version).
`lineage()` walks it breadth-first, one batched hop at a time (`Catalog.lineage_step`:
one read transaction of a few set-based queries per hop whatever the width of the
frontier, catalog/lineage_query.py), never one query per node::

    graph = art.lineage(direction="down", depth=3)
    models = art.downstream(type="model")   # trained on it, directly or through datasets
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lodestore.catalog.records import RunRecord, VersionRecord
from lodestore.errors import InvalidInputError
from lodestore.sdk.liveness import effective_state

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

MAX_DEPTH = 1000  # "unlimited": a guard against pathological graphs, far beyond real pipelines


def version_key(v: VersionRecord) -> str:
    return v.qualified_name


def run_key(run_id: str) -> str:
    return f"run:{run_id}"


@dataclass
class Node:
    key: str  # "zoo/animals:v3" or "run:abc123"
    kind: str  # "version" | "run"
    label: str
    type: str | None  # artifact type, or the run's job_type
    state: str
    depth: int  # hops from the start (a hop = version -> run -> version)
    record: Any = field(repr=False, default=None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.key, "kind": self.kind, "label": self.label, "type": self.type,
                             "state": self.state, "depth": self.depth}
        if self.kind == "version":
            r: VersionRecord = self.record
            d.update(project=r.project, name=r.name, version=r.version, aliases=list(r.aliases),
                     created_by_run=r.created_by_run)
        else:
            r2: RunRecord = self.record
            d.update(project=r2.project, name=r2.name, group=r2.group, job_type=r2.job_type)
        return d


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # "used" (version -> run) | "logged" (run -> version)


@dataclass
class LineageGraph:
    root: str
    direction: str
    depth: int | None
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    # --- queries -------------------------------------------------------------------
    def versions(self, type: str | None = None, include_root: bool = False) -> list[VersionRecord]:
        return [n.record for n in self.nodes.values() if n.kind == "version"
                and (include_root or n.key != self.root) and (type is None or n.type == type)]

    def runs(self) -> list[RunRecord]:
        return [n.record for n in self.nodes.values() if n.kind == "run"]

    def children(self, key: str, direction: str) -> list[str]:
        """Next nodes away from the root: down follows edges forward, up backward."""
        if direction == "down":
            return [e.target for e in self.edges if e.source == key]
        return [e.source for e in self.edges if e.target == key]

    # --- renderings ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "direction": self.direction, "depth": self.depth,
                "nodes": [n.to_dict() for n in self.nodes.values()],
                "edges": [{"source": e.source, "target": e.target, "kind": e.kind} for e in self.edges]}

    def to_dot(self) -> str:
        """Graphviz DOT: versions are boxes, runs ellipses, deleted versions dashed."""
        def q(s: str) -> str:
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for n in self.nodes.values():
            label = n.label + (f" ({n.type})" if n.type else "") + (f" [{n.state}]" if n.state != "live" else "")
            attrs = [f"label={q(label)}", "shape=box" if n.kind == "version" else "shape=ellipse"]
            if n.state in ("deleted", "crashed", "failed"):
                attrs.append("style=dashed")
            if n.key == self.root:
                attrs.append("penwidth=2")
            lines.append(f"  {q(n.key)} [{', '.join(attrs)}];")
        for e in self.edges:
            lines.append(f"  {q(e.source)} -> {q(e.target)} [label={q(e.kind)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def tree_lines(self) -> list[str]:
        """A plain-text tree (what the CLI prints on a terminal)."""
        out = [self._describe(self.root)]
        directions = ["up", "down"] if self.direction == "both" else [self.direction]
        for d in directions:
            kids = self.children(self.root, d)
            if self.direction == "both":
                out.append(("├── " if d == "up" else "└── ") + ("upstream" if d == "up" else "downstream")
                           + ("" if kids else " (none)"))
                prefix = "│   " if d == "up" else "    "
            else:
                prefix = ""
                if not kids:
                    out.append("└── " + ("(not logged by a run)" if d == "up" else "(not used by any run)"))
            self._walk(self.root, d, prefix, out, {self.root})
        return out

    def _walk(self, key: str, d: str, prefix: str, out: list[str], path: set[str]) -> None:
        kids = self.children(key, d)
        for i, k in enumerate(kids):
            last = i == len(kids) - 1
            verb = _verb(self.nodes[k], d)
            cycle = k in path
            out.append(f"{prefix}{'└── ' if last else '├── '}{verb}{self._describe(k)}" + (" (cycle)" if cycle else ""))
            if not cycle:
                self._walk(k, d, prefix + ("    " if last else "│   "), out, path | {k})

    def _describe(self, key: str) -> str:
        n = self.nodes[key]
        if n.kind == "version":
            r: VersionRecord = n.record
            extra = f" [{', '.join(r.aliases)}]" if r.aliases else ""
            state = f" ({n.state.upper()})" if n.state != "live" else ""
            return f"{n.label} ({n.type}){extra}{state}"
        r2: RunRecord = n.record
        bits = [b for b in (r2.job_type, r2.name, n.state) if b]
        return f"{n.label} ({', '.join(bits)})"


def _verb(node: Node, direction: str) -> str:
    if node.kind == "run":
        return "logged by " if direction == "up" else "used by "
    return "used " if direction == "up" else "logged "


def build_graph(repo: Repository, start: VersionRecord, direction: str = "both",
                depth: int | None = None) -> LineageGraph:
    """Walk the graph from `start`; `depth` counts run hops (None = as far as it goes)."""
    if direction not in ("up", "down", "both"):
        raise InvalidInputError(f"direction must be 'up', 'down' or 'both', got {direction!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise InvalidInputError(f"depth must be a non-negative int or None, got {depth!r}")
    graph = LineageGraph(version_key(start), direction, depth)
    graph.nodes[graph.root] = Node(graph.root, "version", graph.root, start.type, start.state, 0, start)
    seen_edges: set[Edge] = set()
    limit = MAX_DEPTH if depth is None else depth
    catalog = repo.catalog
    for d in (["up", "down"] if direction == "both" else [direction]):
        frontier = {start.id}
        visited = {start.id}
        hop = 0
        while frontier and hop < limit:
            hop += 1
            step = catalog.lineage_step(frontier, d)  # the hop and its records: one transaction
            links, records, run_records = step.links, step.versions, step.runs
            new_versions = {o for _, _, o in links if o is not None}
            for rid, vid, other in links:
                rk = run_key(rid)
                if rk not in graph.nodes and rid in run_records:
                    rec = run_records[rid]
                    graph.nodes[rk] = Node(rk, "run", rk, rec.job_type, effective_state(rec), hop, rec)
                v = records.get(vid)
                if v is None or rk not in graph.nodes:
                    continue
                vk = version_key(v)
                first = Edge(rk, vk, "logged") if d == "up" else Edge(vk, rk, "used")
                _add_edge(graph, seen_edges, first)
                if other is None or other not in records:
                    continue
                o = records[other]
                ok = version_key(o)
                if ok not in graph.nodes:
                    graph.nodes[ok] = Node(ok, "version", ok, o.type, o.state, hop, o)
                _add_edge(graph, seen_edges, Edge(ok, rk, "used") if d == "up" else Edge(rk, ok, "logged"))
            frontier = new_versions - visited
            visited |= frontier
    return graph


def _add_edge(graph: LineageGraph, seen: set[Edge], edge: Edge) -> None:
    if edge not in seen:
        seen.add(edge)
        graph.edges.append(edge)
