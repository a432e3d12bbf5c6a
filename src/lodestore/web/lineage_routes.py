"""The lineage route of the REST API: one node's neighbourhood (a version's runs one hop
up and down, or a run's inputs and outputs), large sibling groups folded into cluster
nodes, bounded in size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from lodestore.errors import InvalidInputError
from lodestore.names import parse_ref
from lodestore.sdk.service import Service, VersionRecord
from lodestore.web.routing import MAX_RUN_ID, Param, q, route

LINEAGE_MAX_NODES = 500  # nodes (cluster members included) per lineage response
CLUSTER_AT = 5  # this many siblings of one kind collapse into a cluster node


# ---------------------------------------------------------------------------------- lineage
@dataclass
class _Graph:
    focus: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[dict[str, str]] = field(default_factory=list)


def _version_node(v: VersionRecord) -> dict[str, Any]:
    return {"id": v.qualified_name, "kind": "version", "label": v.qualified_name, "type": v.type,
            "state": v.state, "project": v.project, "name": v.name, "version": v.version,
            "aliases": list(v.aliases)}


def _run_node(svc: Service, r: Any) -> dict[str, Any]:
    return {"id": f"run:{r.id}", "kind": "run", "label": r.name or r.id, "type": r.job_type,
            "state": svc.run_state(r), "project": r.project, "run_id": r.id}


def _neighbourhood(svc: Service, node: str) -> _Graph:
    """`node`'s direct neighbours: a version's producing and using runs (with those runs'
    other inputs and outputs: one hop up and down), or a run's inputs and outputs."""
    if node.startswith("run:"):
        run_id = node[4:]
        if not run_id or len(run_id) > MAX_RUN_ID:
            raise InvalidInputError(f"{node[:60]!r} is not a run node")
        r = svc.run(run_id)
        g = _Graph(node)
        g.nodes[node] = _run_node(svc, r)
        for v in svc.run_inputs(run_id):
            g.nodes.setdefault(v.qualified_name, _version_node(v))
            g.edges.append({"source": v.qualified_name, "target": node, "kind": "used"})
        for v in svc.run_outputs(run_id):
            g.nodes.setdefault(v.qualified_name, _version_node(v))
            g.edges.append({"source": node, "target": v.qualified_name, "kind": "logged"})
        return g
    ref = parse_ref(node)
    if ref.selector is None:
        raise InvalidInputError(f"{node[:60]!r}: a lineage node is project/artifact:vN or run:ID")
    v = svc.version(ref, include_deleted=True)
    graph = svc.lineage(v, "both", depth=1)
    g = _Graph(v.qualified_name)
    for n in graph.nodes.values():
        g.nodes[n.key] = _version_node(n.record) if n.kind == "version" else _run_node(svc, n.record)
    g.edges = [{"source": e.source, "target": e.target, "kind": e.kind} for e in graph.edges]
    return g


def _cluster(g: _Graph) -> list[dict[str, Any]]:
    """Five or more siblings of one kind and type beside one node (e.g. 40 checkpoints a
    run logged) become one cluster node listing them; the focus is never clustered."""
    clusters: list[dict[str, Any]] = []
    taken: set[str] = set()
    near_far: dict[str, dict[str, list[str]]] = {"out": {}, "in": {}}  # node -> its neighbours, in edge order
    for e in g.edges:
        near_far["out"].setdefault(e["source"], []).append(e["target"])
        near_far["in"].setdefault(e["target"], []).append(e["source"])
    for anchor in sorted(g.nodes):
        for direction in ("out", "in"):
            groups: dict[tuple[str, str], list[str]] = {}
            for far in near_far[direction].get(anchor, ()):
                if far != g.focus and far not in taken:
                    n = g.nodes[far]
                    groups.setdefault((n["kind"], n["type"] or ""), []).append(far)
            for (kind, type_), members in sorted(groups.items()):
                members = sorted(set(members))
                if len(members) < CLUSTER_AT:
                    continue
                cid = f"cluster:{anchor}:{direction}:{kind}:{type_}"
                taken.update(members)
                clusters.append({"id": cid, "kind": "cluster", "member_kind": kind, "type": type_ or None,
                                 "label": f"{len(members)} {type_ or kind}{'s' if kind == 'run' else ''}",
                                 "anchor": anchor, "direction": direction,
                                 "members": [g.nodes[m] for m in members]})
    if not clusters:
        return []
    for c in clusters:
        ids = {m["id"] for m in c["members"]}
        for e in g.edges:
            if e["source"] in ids and e["target"] == c["anchor"]:
                e["source"] = c["id"]
            elif e["target"] in ids and e["source"] == c["anchor"]:
                e["target"] = c["id"]
        for m in ids:
            g.nodes.pop(m, None)
        g.nodes[c["id"]] = c
    seen: set[tuple[str, str]] = set()
    edges = []
    for e in g.edges:
        if e["source"] in g.nodes and e["target"] in g.nodes and (e["source"], e["target"]) not in seen:
            seen.add((e["source"], e["target"]))
            edges.append(e)
    g.edges = edges
    return clusters


@route("GET", "/api/v1/lineage", "One node's neighbourhood in the lineage graph (a version: its runs one hop up "
       "and down; a run: its inputs and outputs); large sibling groups as cluster nodes; at most 500 nodes.",
       "lineage", (Param("node", "query", "project/artifact:vN or run:ID", True),))
def lineage(svc: Service, request: Request) -> Any:
    g = _neighbourhood(svc, q(request, "node") or "")
    _cluster(g)
    truncated = False
    count = 0
    kept: dict[str, dict[str, Any]] = {}
    for key in [g.focus, *sorted(k for k in g.nodes if k != g.focus)]:
        n = g.nodes[key]
        size = 1 + len(n.get("members", ()))
        if count + size > LINEAGE_MAX_NODES:
            if n["kind"] == "cluster" and count + 1 < LINEAGE_MAX_NODES:
                room = LINEAGE_MAX_NODES - count - 1
                n = {**n, "members": n["members"][:room], "truncated": True}
                size = 1 + room
            else:
                truncated = True
                continue
        kept[key] = n
        count += size
        truncated = truncated or bool(n.get("truncated"))
    edges = [e for e in g.edges if e["source"] in kept and e["target"] in kept]
    return {"focus": g.focus, "nodes": list(kept.values()), "edges": edges, "truncated": truncated}
