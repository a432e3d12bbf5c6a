// DOM helpers: every piece of data goes in as text (textContent / attributes), never as
// markup, so names, descriptions and metadata holding <script> stay inert.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "href") el.setAttribute("href", safeHref(v));
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Links only to this site (a path) or to http(s) pages the user's own text names;
// javascript:, data: and the like never become links.
export function safeHref(v) {
  const s = String(v);
  if (s.startsWith("/") && !s.startsWith("//")) return s;
  if (/^https?:\/\//i.test(s)) return s;
  if (s.startsWith("?") || s.startsWith("#")) return s;
  return "#";
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

export function humanSize(n) {
  if (n === null || n === undefined) return "-";
  let size = Number(n);
  for (const unit of ["B", "KB", "MB", "GB", "TB"]) {
    if (Math.abs(size) < 1000 || unit === "TB") return unit === "B" ? `${size.toFixed(0)} B` : `${size.toFixed(1)} ${unit}`;
    size /= 1000;
  }
  return `${n} B`;
}

export function when(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  const pad = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function chip(text, cls = "") { return h("span", { class: `chip ${cls}` }, text); }
