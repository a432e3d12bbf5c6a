// The lineage graph: a deterministic layered layout (left to right) drawn as SVG.
// Layers: the focus is layer 0; an edge source -> target puts the target one layer to
// the right. Inside a layer nodes sort by (kind, label): the same graph always gives the
// same picture, whatever order the responses arrived in.
import { h, clear } from "./dom.js";

const NODE_W = 200, NODE_H = 34, GAP_X = 70, GAP_Y = 14, PAD = 20;
const SVG_NS = () => document.getElementById("svg-ns").namespaceURI;

function s(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS(), tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export function layout(graph) {
  const layer = new Map([[graph.focus, 0]]);
  const out = new Map(), inc = new Map();
  for (const e of graph.edges) {
    (out.get(e.source) || out.set(e.source, []).get(e.source)).push(e.target);
    (inc.get(e.target) || inc.set(e.target, []).get(e.target)).push(e.source);
  }
  const queue = [graph.focus];
  while (queue.length) {
    const key = queue.shift();
    const l = layer.get(key);
    for (const t of (out.get(key) || []).slice().sort()) if (!layer.has(t)) { layer.set(t, l + 1); queue.push(t); }
    for (const t of (inc.get(key) || []).slice().sort()) if (!layer.has(t)) { layer.set(t, l - 1); queue.push(t); }
  }
  const layers = new Map();
  for (const n of graph.nodes.values()) {
    const l = layer.has(n.id) ? layer.get(n.id) : 0;
    (layers.get(l) || layers.set(l, []).get(l)).push(n);
  }
  const order = [...layers.keys()].sort((a, b) => a - b);
  const kindRank = { run: 0, version: 1, cluster: 2 };
  const tallest = Math.max(...[...layers.values()].map((l) => l.length));
  const pos = new Map();
  order.forEach((l, col) => {
    const nodes = layers.get(l).sort((a, b) => (kindRank[a.kind] - kindRank[b.kind]) || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0) || (a.id < b.id ? -1 : 1));
    const offset = (tallest - nodes.length) * (NODE_H + GAP_Y) / 2;
    nodes.forEach((n, row) => pos.set(n.id, { x: PAD + col * (NODE_W + GAP_X), y: PAD + offset + row * (NODE_H + GAP_Y) }));
  });
  return { pos, width: PAD * 2 + order.length * (NODE_W + GAP_X) - GAP_X, height: PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y };
}

function shortLabel(n) {
  const text = n.kind === "run" ? `run ${n.label}` : n.label;
  return text.length > 28 ? text.slice(0, 27) + "…" : text;
}

export function draw(container, graph, { selected, onSelect }) {
  const { pos, width, height } = layout(graph);
  const svg = s("svg", { width: Math.max(width, 300), height: Math.max(height, 120), role: "img", "aria-label": "lineage graph" });
  for (const e of graph.edges) {
    const a = pos.get(e.source), b = pos.get(e.target);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    svg.append(s("path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, "data-kind": e.kind }));
  }
  for (const n of graph.nodes.values()) {
    const p = pos.get(n.id);
    const cls = ["node", n.kind, `state-${n.state || "live"}`, n.id === graph.focus ? "focus" : "", n.id === selected ? "selected" : ""].join(" ");
    const g = s("g", { class: cls, transform: `translate(${p.x},${p.y})`, "data-id": n.id, tabindex: 0 });
    g.append(s("rect", { width: NODE_W, height: NODE_H, rx: n.kind === "run" ? 17 : 4 }));
    g.append(s("title", {}, `${n.kind}: ${n.label}${n.type ? " (" + n.type + ")" : ""}${n.state && n.state !== "live" ? " [" + n.state + "]" : ""}`));
    g.append(s("text", { x: 10, y: 15 }, shortLabel(n)));
    g.append(s("text", { x: 10, y: 28, class: "sub" }, n.kind === "cluster" ? "cluster: click to search" : (n.type || n.kind)));
    g.addEventListener("click", () => onSelect(n));
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") onSelect(n); });
    svg.append(g);
  }
  clear(container).append(svg);
}

export function clusterPanel(node, onPick) {
  const list = h("ul", { class: "members" });
  const input = h("input", { type: "search", placeholder: `search ${node.members.length} members`, class: "cluster-search" });
  const fill = () => {
    const needle = input.value.toLowerCase();
    list.replaceChildren(...node.members.filter((m) => m.label.toLowerCase().includes(needle)).slice(0, 200)
      .map((m) => h("li", {}, h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); onPick(m); } }, m.label))));
  };
  input.addEventListener("input", fill);
  fill();
  return h("div", {}, input, node.truncated ? h("p", { class: "truncated" }, "truncated") : null, list);
}
