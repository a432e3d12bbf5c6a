// lode ui: one page, routed by URL (every state is a URL you can paste). All data comes
// from the JSON API under /api/v1, the same one scripts use; nothing is private.
import { h, append, clear, humanSize, when, chip } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { draw, clusterPanel } from "./lineage.js";

const main = document.getElementById("main");
let config = { read_only: true };

// ------------------------------------------------------------------------------ API
class ApiError extends Error {
  constructor(body, status) {
    super(body.message || `HTTP ${status}`);
    this.status = status; this.body = body;
  }
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: {} };
  if (options.method) init.method = options.method;
  if (options.body !== undefined) { init.body = JSON.stringify(options.body); init.headers["content-type"] = "application/json"; }
  const resp = await fetch(path, init);
  const data = await resp.json().catch(() => ({ error: { message: `HTTP ${resp.status}` } }));
  if (!resp.ok) throw new ApiError(data.error || {}, resp.status);
  return data;
}

const enc = encodeURIComponent;
const artPath = (p, n) => `/api/v1/projects/${enc(p)}/artifacts/${enc(n)}`;
const verPath = (p, n, s) => `${artPath(p, n)}/versions/${enc(s)}`;
const filePath = (p) => p.split("/").map(enc).join("/");
const pageUrl = (path, params) => {
  const qs = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
};

function errorBox(e) {
  const body = e.body || {};
  const box = h("div", { class: "error", role: "alert" }, `${e.status === 404 ? "Not found: " : "Error: "}${(body.message || String(e.message)).split("\n")[0]}`);
  return box;
}

function flash(text) {
  const el = h("div", { class: "flash", role: "status" }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), 2500);
}

// ------------------------------------------------------------------------------ dialogs
// Every edit is asked for in a dialog and then confirmed in a second one.
function dialog(title, fields, okText = "Continue") {
  const dlg = document.getElementById("dialog");
  const form = clear(document.getElementById("dialog-form"));
  const inputs = {};
  form.append(h("h2", {}, title));
  for (const f of fields) {
    if (f.text) { form.append(h("p", {}, f.text)); continue; }
    const input = f.multiline ? h("textarea", { name: f.name, rows: 6 }) : h("input", { type: "text", name: f.name, placeholder: f.placeholder || "" });
    input.value = f.value || "";
    inputs[f.name] = input;
    form.append(h("label", { for: `dlg-${f.name}` }, f.label), input);
    input.id = `dlg-${f.name}`;
  }
  const ok = h("button", { value: "ok", class: "primary", id: "dialog-ok" }, okText);
  const cancel = h("button", { value: "cancel", id: "dialog-cancel" }, "Cancel");
  form.append(h("div", { class: "buttons" }, cancel, ok));
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => {
      if (dlg.returnValue !== "ok") return resolve(null);
      const values = {};
      for (const [k, el] of Object.entries(inputs)) values[k] = el.value;
      resolve(values);
    }, { once: true });
    dlg.returnValue = "";
    dlg.showModal();
  });
}

const confirmStep = (text) => dialog("Confirm", [{ text }], "Confirm");

async function edit(ask, describe, perform, after) {
  const values = ask ? await ask() : {};
  if (values === null) return;
  if ((await confirmStep(describe(values))) === null) return;
  try {
    await perform(values);
    flash("Saved");
  } catch (e) {
    flash(`Refused: ${(e.body && e.body.message) || e.message}`);
    await dialog("Refused", [{ text: (e.body && e.body.message) || e.message }], "OK");
  }
  after();
}

// ------------------------------------------------------------------------------ router
function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
  render();
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || a.target || a.hasAttribute("download")) return;
  const href = a.getAttribute("href");
  if (!href || !href.startsWith("/") || href.startsWith("/api/")) return;
  ev.preventDefault();
  navigate(href);
});
window.addEventListener("popstate", render);

async function render() {
  const path = decodeURIComponent(location.pathname);
  const params = new URLSearchParams(location.search);
  for (const id of ["nav-artifacts", "nav-runs", "nav-docs"]) document.getElementById(id).classList.remove("active");
  clear(main);
  let m;
  try {
    if (path === "/") { document.getElementById("nav-artifacts").classList.add("active"); await artifactsPage(params); }
    else if (path === "/runs") { document.getElementById("nav-runs").classList.add("active"); await runsPage(params); }
    else if ((m = /^\/runs\/([^/]+)$/.exec(path))) { document.getElementById("nav-runs").classList.add("active"); await runPage(m[1]); }
    else if (path === "/docs") { document.getElementById("nav-docs").classList.add("active"); await docsPage(); }
    else if ((m = /^\/artifacts\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(path))) await artifactPage(m[1], m[2], m[3] || "latest", params);
    else main.append(h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "/" }, "Back to the artifacts")));
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    main.append(h("h1", {}, e.status === 404 ? "Not found" : "Error"), errorBox(e), h("p", {}, h("a", { href: "/" }, "Back to the artifacts")));
  }
  document.body.dataset.ready = String(Date.now());
}

// ------------------------------------------------------------------------------ tables
function table(columns, rows, { sort, onSort, rowClass } = {}) {
  const head = h("tr", {}, columns.map((c) => {
    const th = h("th", { class: [c.num ? "num" : "", c.sort ? "sortable" : ""].join(" "), scope: "col" }, c.label);
    if (c.sort && sort) {
      const key = sort.replace(/^-/, "");
      if (key === c.sort) th.classList.add("sorted", ...(sort.startsWith("-") ? ["desc"] : []));
      th.addEventListener("click", () => onSort(key === c.sort && !sort.startsWith("-") ? `-${c.sort}` : c.sort));
    }
    return th;
  }));
  const body = rows.map((r) => h("tr", { class: rowClass ? rowClass(r) : "" }, columns.map((c) => h("td", { class: c.num ? "num" : c.cls || "" }, c.cell(r)))));
  return h("table", {}, h("thead", {}, head), h("tbody", {}, body.length ? body : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "nothing here"))));
}

function pager(nextCursor, firstUrl, nextUrl, cursor) {
  return h("div", { class: "pager" },
    cursor ? h("a", { href: firstUrl, class: "button small" }, "« First page") : null,
    nextCursor ? h("a", { href: nextUrl, class: "button small", id: "next-page" }, "Next page »") : null);
}

const versionLink = (v) => h("a", { href: `/artifacts/${enc(v.project)}/${enc(v.name)}/${enc(v.version)}` }, `${v.project}/${v.name}:${v.version}`);
const runLink = (id, label) => id ? h("a", { href: `/runs/${enc(id)}` }, label || id) : "-";
const aliasChips = (v) => (v.aliases || []).map((a) => chip(a, `alias ${a === "latest" ? "latest" : ""}`));
const tagChips = (v) => (v.tags || []).map((t) => chip(t, "tag"));

// ------------------------------------------------------------------------------ artifacts list
async function artifactsPage(params) {
  const q = params.get("q") || "", project = params.get("project") || "", type = params.get("type") || "";
  const sort = params.get("sort") || "name", cursor = params.get("cursor") || "";
  main.append(h("h1", {}, "Artifacts"));
  const cards = h("div", { class: "cards", id: "stat-cards" }, h("div", { class: "card muted" }, "measuring…"));
  main.append(cards);
  api("/api/v1/stats").then((s) => {
    const saved = (n) => humanSize(n);
    cards.replaceChildren(...[
      ["artifacts", s.artifacts], ["versions", s.versions.toLocaleString()], ["logical bytes", humanSize(s.logical_bytes)],
      ["stored bytes", humanSize(s.stored_bytes)], ["dedup savings", saved(s.dedup_saved_bytes)],
      ["compression savings", saved(s.compression_saved_bytes)],
    ].map(([label, value]) => h("div", { class: "card", "data-stat": label }, h("div", { class: "label" }, label), h("div", { class: "value" }, String(value)))));
  }).catch((e) => cards.replaceChildren(errorBox(e)));

  const [projects, types] = await Promise.all([api("/api/v1/projects?limit=500"), api(pageUrl("/api/v1/types", { project, limit: 500 }))]);
  const queryInput = h("input", { type: "search", class: "query", name: "q", id: "search", value: q, placeholder: "search: type=model metadata.val_acc>=0.9 tag:production created>2026-01-01 name~resnet", "aria-label": "search query" });
  const projectSel = h("select", { id: "project-filter", "aria-label": "project" }, h("option", { value: "" }, "all projects"), projects.items.map((p) => h("option", { value: p.name, selected: p.name === project }, p.name)));
  const typeSel = h("select", { id: "type-filter", "aria-label": "type" }, h("option", { value: "" }, "all types"), types.items.map((t) => h("option", { value: t.name, selected: t.name === type }, t.name)));
  const go = (extra) => navigate(pageUrl("/", { q: queryInput.value.trim(), project: projectSel.value, type: typeSel.value, sort, ...extra }));
  const form = h("form", { class: "toolbar", id: "search-form" }, queryInput, h("button", { type: "submit", class: "primary" }, "Search"), projectSel, typeSel);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); go({}); });
  projectSel.addEventListener("change", () => go({ type: "" }));
  typeSel.addEventListener("change", () => go({}));
  main.append(form);

  if (q) {
    let found;
    try {
      found = await api(pageUrl("/api/v1/search", { q, cursor, limit: 50 }));
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 400) throw e;
      const col = e.body.column;
      main.append(h("div", { class: "error", id: "query-error", role: "alert" }, e.body.message.split("\n")[0],
        col ? h("pre", { class: "caret" }, `${q}\n${" ".repeat(col - 1)}^`) : null));
      return;
    }
    main.append(parsedView(found.parsed));
    main.append(table([
      { label: "version", cell: versionLink }, { label: "type", cell: (v) => v.type },
      { label: "aliases", cell: aliasChips }, { label: "tags", cell: tagChips },
      { label: "size", num: true, cell: (v) => humanSize(v.logical_bytes) }, { label: "files", num: true, cell: (v) => v.file_count },
      { label: "created", cell: (v) => when(v.created_at) },
    ], found.items, { rowClass: (v) => `state-${v.state} ${v.state}` }));
    main.append(pager(found.next_cursor, pageUrl("/", { q }), pageUrl("/", { q, cursor: found.next_cursor }), cursor));
    return;
  }
  const list = await api(pageUrl("/api/v1/artifacts", { project, type, sort, cursor, limit: 50 }));
  main.append(table([
    { label: "artifact", sort: "name", cell: (a) => h("a", { href: `/artifacts/${enc(a.project)}/${enc(a.name)}` }, `${a.project}/${a.name}`) },
    { label: "type", sort: "type", cell: (a) => a.type },
    { label: "versions", sort: "versions", num: true, cell: (a) => a.version_count },
    { label: "latest", cell: (a) => a.latest || "-" },
    { label: "logical size", sort: "size", num: true, cell: (a) => humanSize(a.logical_bytes) },
    { label: "created", sort: "created", cell: (a) => when(a.created_at) },
  ], list.items, { sort, onSort: (s) => navigate(pageUrl("/", { project, type, sort: s })) }));
  main.append(pager(list.next_cursor, pageUrl("/", { project, type, sort }), pageUrl("/", { project, type, sort, cursor: list.next_cursor }), cursor));
}

function parsedView(parsed) {
  const groups = parsed.groups.map((g, i) => [i ? h("span", { class: "or" }, "OR") : null,
    g.map((t) => chip(`${t.negate ? "NOT " : ""}${t.key} ${t.op} ${typeof t.value === "string" ? t.value : JSON.stringify(t.value)}`))]);
  return h("div", { class: "parsed", id: "parsed" }, h("span", { class: "muted" }, "parsed as: "), groups);
}

// ------------------------------------------------------------------------------ one artifact
const TABS = ["overview", "versions", "files", "lineage", "compare"];

async function artifactPage(project, name, selector, params) {
  const tab = TABS.includes(params.get("tab")) ? params.get("tab") : "overview";
  const [art, v] = await Promise.all([api(artPath(project, name)), api(verPath(project, name, selector))]);
  const base = `/artifacts/${enc(project)}/${enc(name)}/${enc(selector)}`;
  main.append(h("div", { class: "muted" }, h("a", { href: pageUrl("/", { project }) }, project), " / ", art.type));
  main.append(h("h1", { id: "title" }, `${name}:${v.version}`, " ", chip(v.state, `state-${v.state}`), " ", aliasChips(v)));
  main.append(h("nav", { class: "tabs", role: "tablist" }, TABS.map((t) => h("a", { href: pageUrl(base, { tab: t }), class: t === tab ? "active" : "", role: "tab", id: `tab-${t}` }, t[0].toUpperCase() + t.slice(1)))));
  const body = h("section", { id: `panel-${tab}` });
  main.append(body);
  const reload = () => render();
  if (tab === "overview") await overviewTab(body, art, v, reload);
  else if (tab === "versions") await versionsTab(body, art, v, params, reload);
  else if (tab === "files") await filesTab(body, v, params, base);
  else if (tab === "lineage") await lineageTab(body, v, params, base);
  else await compareTab(body, v, params, base);
}

function metadataTree(obj, prefix, v) {
  const wrap = h("div", { class: "tree", id: prefix ? null : "metadata-tree" });
  for (const [k, val] of Object.entries(obj || {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (val && typeof val === "object" && !Array.isArray(val) && Object.keys(val).length) {
      wrap.append(h("details", { open: true }, h("summary", {}, h("span", { class: "key" }, k)), metadataTree(val, path, v)));
    } else {
      const shown = JSON.stringify(val);
      const literal = typeof val === "string" ? (/^[\w.\-/]+$/.test(val) ? val : JSON.stringify(val)) : shown;
      wrap.append(h("div", { class: "leaf" }, h("span", { class: "key" }, k), h("span", { class: "val" }, shown),
        h("button", { class: "small", title: `copy metadata.${path}`, onclick: () => navigator.clipboard && navigator.clipboard.writeText(`metadata.${path}`).then(() => flash(`copied metadata.${path}`)) }, "copy path"),
        typeof val !== "object" || val === null ? h("a", { class: "button small", href: pageUrl("/", { q: `metadata.${path}=${literal}` }) }, "search by this key") : null));
    }
  }
  return wrap;
}

async function overviewTab(body, art, v, reload) {
  const history = await api(`${artPath(v.project, v.name)}/aliases/history?limit=100`);
  // Own bytes need an accounting pass over the version's chunks (seconds for 100,000
  // files): the page shows everything else first and fills them in when measured.
  api(verPath(v.project, v.name, v.version) + "?own_bytes=true").then((m) => {
    const cell = document.getElementById("own-bytes");
    if (cell) { cell.textContent = humanSize(m.own_bytes); cell.classList.remove("muted"); }
  }).catch(() => {});
  const editable = !config.read_only && v.state !== "deleted";
  const P = (path) => verPath(v.project, v.name, v.version) + path;
  const editButtons = editable ? h("div", { class: "toolbar" },
    h("button", { id: "edit-description", onclick: () => edit(
      () => dialog("Edit description", [{ name: "description", label: "Description (Markdown)", value: v.description || "", multiline: true }]),
      () => `Save the new description of ${v.ref}?`,
      (x) => api(P(""), { method: "PATCH", body: { description: x.description || null } }), reload) }, "Edit description"),
    h("button", { id: "edit-metadata", onclick: () => edit(
      () => dialog("Set a metadata key", [{ name: "key", label: "Key (top level)" }, { name: "value", label: "Value (JSON; plain text is a string)" }]),
      (x) => `Set metadata ${x.key} = ${x.value} on ${v.ref}?`,
      (x) => { let value; try { value = JSON.parse(x.value); } catch { value = x.value; } return api(P(""), { method: "PATCH", body: { metadata_set: { [x.key]: value } } }); }, reload) }, "Set metadata key"),
    h("button", { id: "unset-metadata", onclick: () => edit(
      () => dialog("Remove a metadata key", [{ name: "key", label: "Key (top level)" }]),
      (x) => `Remove metadata ${x.key} from ${v.ref}?`,
      (x) => api(P(""), { method: "PATCH", body: { metadata_unset: [x.key] } }), reload) }, "Remove metadata key"),
    h("button", { id: "edit-tags", onclick: () => edit(
      () => dialog("Tags", [{ name: "add", label: "Add (comma separated)" }, { name: "remove", label: "Remove (comma separated)" }]),
      (x) => `Add tags [${x.add}] and remove [${x.remove}] on ${v.ref}?`,
      (x) => { const split = (s) => s.split(",").map((t) => t.trim()).filter(Boolean); return api(P(""), { method: "PATCH", body: { tags_add: split(x.add), tags_remove: split(x.remove) } }); }, reload) }, "Edit tags"),
    h("button", { id: "add-alias", onclick: () => edit(
      () => dialog(`Point an alias at ${v.version}`, [{ name: "alias", label: "Alias (moves here if another version holds it)" }]),
      (x) => `Point alias ${x.alias} at ${v.ref}?`,
      (x) => api(`${artPath(v.project, v.name)}/aliases/${enc(x.alias)}`, { method: "PUT", body: { version: v.version } }), reload) }, "Add / move alias here"),
    h("button", { id: "delete-version", class: "danger", onclick: () => edit(null,
      () => `Soft-delete ${v.ref}? It stays restorable until gc.${v.aliases.filter((a) => a !== "latest").length ? " Its aliases are removed." : ""}`,
      () => api(`${P("")}?delete_aliases=true`, { method: "DELETE" }), reload) }, "Soft-delete")) : null;
  const restore = !config.read_only && v.state === "deleted" ? h("button", { id: "restore-version", onclick: () => edit(null, () => `Restore ${v.ref}?`, () => api(P("/restore"), { method: "POST", body: {} }), reload) }, "Restore") : null;
  const aliasRows = v.aliases.map((a) => h("li", {}, chip(a, `alias ${a === "latest" ? "latest" : ""}`),
    !config.read_only && a !== "latest" ? h("button", { class: "small danger", "data-remove-alias": a, onclick: () => edit(null, () => `Remove alias ${a} from ${v.project}/${v.name}?`, () => api(`${artPath(v.project, v.name)}/aliases/${enc(a)}`, { method: "DELETE" }), reload) }, "remove") : null));
  append(body, [editButtons, restore, h("div", { class: "grid2" },
    h("div", {},
      h("h2", {}, "Description"), v.description ? renderMarkdown(v.description) : h("p", { class: "muted" }, "no description"),
      h("h2", {}, "Metadata"), Object.keys(v.metadata || {}).length ? h("div", { class: "box" }, metadataTree(v.metadata, "", v)) : h("p", { class: "muted" }, "no metadata"),
      h("h2", {}, "Alias history"),
      table([{ label: "when", cell: (e) => when(e.at) }, { label: "alias", cell: (e) => e.alias }, { label: "from", cell: (e) => e.from || "-" },
        { label: "to", cell: (e) => e.to || "-" }, { label: "by run", cell: (e) => runLink(e.run_id) }], history.items)),
    h("div", {},
      h("dl", { class: "kv", id: "facts" },
        h("dt", {}, "version"), h("dd", {}, v.version), h("dt", {}, "type"), h("dd", {}, v.type),
        h("dt", {}, "created"), h("dd", {}, when(v.created_at)), h("dt", {}, "digest"), h("dd", { class: "mono" }, v.digest),
        h("dt", {}, "logical size"), h("dd", {}, humanSize(v.logical_bytes)), h("dt", {}, "own bytes"), h("dd", { id: "own-bytes", class: "muted" }, "measuring…"),
        h("dt", {}, "files"), h("dd", {}, v.file_count.toLocaleString()),
        h("dt", {}, "TTL"), h("dd", {}, v.ttl_seconds ? `${Math.round(v.ttl_seconds / 86400 * 10) / 10} days` : "none"),
        h("dt", {}, "producing run"), h("dd", {}, v.producer ? runLink(v.producer.id, `${v.producer.name || v.producer.id} (${v.producer.state})`) : "none"),
        h("dt", {}, "retention"), h("dd", {}, art.retention ? JSON.stringify(art.retention) : "keep everything")),
      h("h2", {}, "Tags"), h("div", { id: "tags" }, v.tags.length ? tagChips(v) : h("span", { class: "muted" }, "none")),
      h("h2", {}, "Aliases"), h("ul", { id: "aliases" }, aliasRows)))]);
}

async function versionsTab(body, art, current, params, reload) {
  const cursor = params.get("cursor") || "";
  const sort = params.get("sort") || "-index";
  const base = `/artifacts/${enc(art.project)}/${enc(art.name)}/${enc(current.version)}`;
  const list = await api(pageUrl(`${artPath(art.project, art.name)}/versions`, { include_deleted: "true", sort, cursor, limit: 50 }));
  body.append(table([
    { label: "version", sort: "index", cell: (v) => h("a", { href: `/artifacts/${enc(v.project)}/${enc(v.name)}/${enc(v.version)}` }, v.version) },
    { label: "created", sort: "created", cell: (v) => when(v.created_at) },
    { label: "size", sort: "size", num: true, cell: (v) => humanSize(v.logical_bytes) },
    { label: "own bytes", num: true, cell: (v) => humanSize(v.own_bytes) },
    { label: "files", sort: "files", num: true, cell: (v) => v.file_count.toLocaleString() },
    { label: "aliases", cell: aliasChips }, { label: "tags", cell: tagChips },
    { label: "producing run", cell: (v) => runLink(v.created_by_run) },
    { label: "state", cell: (v) => chip(v.state, `state-${v.state}`) },
    { label: "", cls: "actions", cell: (v) => v.state === "deleted" && !config.read_only
      ? h("button", { class: "small", "data-restore": v.version, onclick: () => edit(null, () => `Restore ${v.ref}?`, () => api(verPath(v.project, v.name, v.version) + "/restore", { method: "POST", body: {} }), reload) }, "restore") : "" },
  ], list.items, { sort, onSort: (s) => navigate(pageUrl(base, { tab: "versions", sort: s })), rowClass: (v) => v.state }));
  body.append(pager(list.next_cursor, pageUrl(base, { tab: "versions", sort }), pageUrl(base, { tab: "versions", sort, cursor: list.next_cursor }), cursor));
}

async function filesTab(body, v, params, base) {
  const folder = params.get("folder") || "", filter = params.get("filter") || "", cursor = params.get("cursor") || "";
  const list = await api(pageUrl(`${verPath(v.project, v.name, v.version)}/files`, { folder, filter, cursor, limit: 200 }));
  const crumbs = h("div", { class: "crumbs", id: "crumbs" }, h("a", { href: pageUrl(base, { tab: "files" }) }, `${v.name}:${v.version}`));
  let acc = "";
  for (const part of (list.folder ? list.folder.split("/") : [])) {
    acc = acc ? `${acc}/${part}` : part;
    crumbs.append(" / ", h("a", { href: pageUrl(base, { tab: "files", folder: acc }) }, part));
  }
  const filterInput = h("input", { type: "search", id: "file-filter", value: filter, placeholder: "filter paths in this folder", "aria-label": "filter files" });
  const form = h("form", { class: "toolbar" }, filterInput, h("button", { type: "submit" }, "Filter"),
    h("a", { class: "button", id: "download-archive", href: `${verPath(v.project, v.name, v.version)}/archive`, download: "" }, "Download version (.tar)"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); navigate(pageUrl(base, { tab: "files", folder, filter: filterInput.value.trim() })); });
  const preview = h("div", { id: "preview" });
  body.append(crumbs, form, table([
    { label: "name", cell: (f) => f.kind === "folder" ? h("a", { href: pageUrl(base, { tab: "files", folder: f.path }), class: "folder" }, `${filter ? f.path : f.name}/`)
      : h("a", { href: pageUrl(base, { tab: "files", folder, filter, preview: f.path }), class: f.kind }, filter ? f.path : f.name) },
    { label: "size", num: true, cell: (f) => f.size == null ? "" : humanSize(f.size) },
    { label: "files", num: true, cell: (f) => f.kind === "folder" ? f.files.toLocaleString() : "" },
    { label: "digest", cell: (f) => f.digest ? h("span", { class: "mono", title: f.digest }, f.digest.slice(0, 16)) : "" },
    { label: "", cell: (f) => f.kind === "file" ? h("a", { href: `${verPath(v.project, v.name, v.version)}/raw/${filePath(f.path)}`, download: "" }, "download")
      : f.kind === "reference" ? referenceUri(f.uri) : "" },
  ], list.items), pager(list.next_cursor, pageUrl(base, { tab: "files", folder, filter }), pageUrl(base, { tab: "files", folder, filter, cursor: list.next_cursor }), cursor), preview);
  const shown = params.get("preview");
  if (shown) await showPreview(preview, v, shown);
}

// A reference entry's URI, as text: the store holds none of its bytes and the server never
// fetches it; an http(s) URI is also a link the browser (not the server) may follow.
function referenceUri(uri) {
  const text = h("span", { class: "mono uri", title: "a reference: the store holds no bytes of it" }, uri);
  return /^https?:\/\//i.test(uri) ? h("a", { href: uri, rel: "noopener noreferrer", target: "_blank", class: "uri-link" }, text) : text;
}

async function showPreview(box, v, path) {
  const p = await api(`${verPath(v.project, v.name, v.version)}/preview/${filePath(path)}`);
  box.append(h("h2", {}, `Preview: ${p.path}`), h("p", { class: "muted" }, `${p.size == null ? "size not recorded" : humanSize(p.size)} · ${p.digest || "no digest recorded"}`));
  if (p.kind === "reference") box.append(h("p", { id: "reference-preview" }, "A reference to ", referenceUri(p.uri),
    ": the store holds none of its bytes, so there is nothing to preview or download here; `lode download` fetches it and checks it against what was recorded."));
  else if (p.kind === "image") box.append(h("img", { class: "preview", alt: p.path, src: `${verPath(v.project, v.name, v.version)}/raw/${filePath(p.path)}?inline=true` }));
  else if (p.kind === "table") append(box, [table(p.header.map((c, i) => ({ label: c, cell: (r) => r[i] ?? "" })), p.rows), p.truncated ? h("p", { class: "muted" }, p.total_rows ? `first 100 of ${p.total_rows.toLocaleString()} rows` : "first 100 rows") : null]);
  else if (p.kind === "json") box.append(h("pre", { class: "preview-text" }, JSON.stringify(p.value, null, 2)));
  else if (p.kind === "text") append(box, [h("pre", { class: "preview-text" }, p.text), p.truncated ? h("p", { class: "muted" }, "first 1 MB") : null,
    p.rendered === false ? h("p", { class: "muted" }, "shown as text: HTML, SVG and notebooks are never rendered here") : null]);
  else box.append(h("p", { class: "muted" }, p.message || `binary file (${p.media_type}): download it to look inside`));
}

// ------------------------------------------------------------------------------ lineage
async function lineageTab(body, v, params, base) {
  const expanded = (params.get("expand") || "").split(",").filter(Boolean);
  const graph = { focus: v.ref, nodes: new Map(), edges: [] };
  let truncated = false;
  const merge = (g) => {
    for (const n of g.nodes) if (!graph.nodes.has(n.id)) graph.nodes.set(n.id, n);
    const seen = new Set(graph.edges.map((e) => `${e.source}>${e.target}`));
    for (const e of g.edges) if (!seen.has(`${e.source}>${e.target}`)) graph.edges.push(e);
    truncated = truncated || g.truncated;
  };
  const all = await Promise.all([v.ref, ...expanded].map((key) => api(pageUrl("/api/v1/lineage", { node: key })).catch(() => null)));
  all.filter(Boolean).forEach(merge);
  const canvas = h("div", { class: "lineage", id: "lineage-canvas" });
  const panel = h("div", { class: "box", id: "lineage-panel" }, h("p", { class: "muted" }, "Click a node to select it and expand it one hop; its details and an Open button (which goes to its page) show here."));
  body.append(h("p", { class: "muted" }, "Runs are rounded, versions square; upstream on the left, downstream on the right.",
    truncated ? h("span", { class: "truncated", id: "lineage-truncated" }, " truncated: more than 500 nodes") : ""),
  h("div", { class: "lineage-wrap" }, canvas, panel));
  const select = (n) => {
    if (n.kind === "cluster") {
      panel.replaceChildren(h("h2", {}, n.label), clusterPanel(n, (m) => navigate(pageUrl(base, { tab: "lineage", expand: [...expanded, m.id].join(",") }))));
      return;
    }
    const href = n.kind === "run" ? `/runs/${enc(n.run_id)}` : `/artifacts/${enc(n.project)}/${enc(n.name)}/${enc(n.version)}`;
    if (!expanded.includes(n.id) && n.id !== v.ref) {
      navigate(pageUrl(base, { tab: "lineage", expand: [...expanded, n.id].join(","), selected: n.id }));
      return;
    }
    panel.replaceChildren(h("h2", {}, n.label), h("p", {}, n.kind, n.type ? ` · ${n.type}` : "", ` · ${n.state}`), h("a", { href, class: "button", id: "lineage-open" }, "Open"));
    draw(canvas, graph, { selected: n.id, onSelect: select });
  };
  draw(canvas, graph, { selected: params.get("selected"), onSelect: select });
  const sel = params.get("selected") && graph.nodes.get(params.get("selected"));
  if (sel) select(sel);
}

// ------------------------------------------------------------------------------ compare
async function compareTab(body, v, params, base) {
  const versions = await api(`${artPath(v.project, v.name)}/versions?limit=500&sort=-index`);
  const older = versions.items.find((x) => x.index < v.index);
  const a = params.get("a") || (older ? older.version : v.version);
  const b = params.get("b") || v.version;
  const pick = (id, value) => h("select", { id, "aria-label": id }, versions.items.map((x) => h("option", { value: x.version, selected: x.version === value }, `${x.version}${x.aliases.length ? " (" + x.aliases.join(", ") + ")" : ""}`)));
  const selA = pick("compare-a", a), selB = pick("compare-b", b);
  const form = h("form", { class: "toolbar" }, "Compare ", selA, " → ", selB, h("button", { type: "submit", class: "primary" }, "Compare"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); navigate(pageUrl(base, { tab: "compare", a: selA.value, b: selB.value })); });
  body.append(form);
  const refA = `${v.project}/${v.name}:${a}`, refB = `${v.project}/${v.name}:${b}`;
  const d = await api(pageUrl("/api/v1/diff", { a: refA, b: refB, limit: 200 }));
  body.append(h("p", { id: "diff-summary" }, h("strong", {}, d.summary), ` · ${d.unchanged.toLocaleString()} unchanged`),
    h("p", { id: "diff-new-chunks", title: `chunks ${b} holds that ${a} does not: their stored bytes (raw: ${humanSize(d.new_chunk_raw_bytes)})` },
      `new chunk bytes ${b} adds: `, h("strong", {}, humanSize(d.new_chunk_bytes)), ` stored (${humanSize(d.new_chunk_raw_bytes)} raw)`));
  const diffBox = h("div", { id: "text-diff" });
  const textDiff = async (path, oldPath) => {
    const t = await api(pageUrl("/api/v1/diff/text", { a: refA, b: refB, path, old_path: oldPath })).catch((e) => e);
    diffBox.replaceChildren(h("h2", {}, `${oldPath || path} → ${path}`));
    if (t instanceof Error) { diffBox.append(errorBox(t)); return; }
    diffBox.append(h("table", { class: "side-table" }, h("tbody", {}, t.rows.map((r) => h("tr", { class: r.op },
      h("td", { class: "num muted" }, r.old_no ?? ""), h("td", { class: "old mono" }, r.old ?? ""),
      h("td", { class: "num muted" }, r.new_no ?? ""), h("td", { class: "new mono" }, r.new ?? ""))))));
  };
  const section = (title, key, columns) => {
    const s = d[key];
    if (!s.total) return null;
    const tbl = table(columns, s.items);
    const more = s.next_cursor ? h("button", { class: "small" }, `more (${s.total - s.items.length} left)`) : null;
    let next = s.next_cursor;
    if (more) more.addEventListener("click", async () => {
      const page = await api(pageUrl("/api/v1/diff", { a: refA, b: refB, section: key, cursor: next, limit: 200 }));
      const rows = table(columns, page[key].items).querySelectorAll("tbody tr");
      tbl.querySelector("tbody").append(...rows);
      next = page[key].next_cursor;
      if (!next) more.remove();
    });
    return h("div", { id: `diff-${key}` }, h("h2", {}, `${title} (${s.total.toLocaleString()})`), tbl, more);
  };
  append(body, [
    section("Added", "added", [{ label: "path", cell: (x) => x.path }, { label: "size", num: true, cell: (x) => humanSize(x.size) }]),
    section("Removed", "removed", [{ label: "path", cell: (x) => x.path }, { label: "size", num: true, cell: (x) => humanSize(x.size) }]),
    section("Modified", "modified", [{ label: "path", cell: (x) => x.path }, { label: "old size", num: true, cell: (x) => humanSize(x.old_size) },
      { label: "new size", num: true, cell: (x) => humanSize(x.new_size) },
      { label: "", cell: (x) => x.old_size <= 256000 && x.new_size <= 256000 ? h("button", { class: "small", "data-diff": x.path, onclick: () => textDiff(x.path) }, "side by side") : "" }]),
    section("Renamed", "renamed", [{ label: "from", cell: (x) => x.from }, { label: "to", cell: (x) => x.to }, { label: "size", num: true, cell: (x) => humanSize(x.size) }])]);
  const md = d.metadata;
  const mdRows = [...Object.entries(md.added).map(([k, n]) => ({ k, op: "added", o: undefined, n })),
    ...Object.entries(md.removed).map(([k, o]) => ({ k, op: "removed", o, n: undefined })),
    ...Object.entries(md.changed).map(([k, c]) => ({ k, op: "changed", o: c.old, n: c.new }))].sort((x, y) => (x.k < y.k ? -1 : 1));
  const show = (x) => x === undefined ? "" : JSON.stringify(x);
  body.append(h("h2", {}, "Metadata"), table([{ label: "key path", cell: (r) => h("span", { class: "mono" }, r.k) }, { label: "change", cell: (r) => r.op },
    { label: "old", cell: (r) => h("span", { class: "mono" }, show(r.o)) }, { label: "new", cell: (r) => h("span", { class: "mono" }, show(r.n)) }], mdRows));
  body.append(h("h2", {}, "Aliases and tags"), h("p", { id: "diff-labels" },
    d.aliases.added.map((x) => chip(`+alias ${x}`)), d.aliases.removed.map((x) => chip(`-alias ${x}`, "state-deleted")),
    d.tags.added.map((x) => chip(`+tag ${x}`, "tag")), d.tags.removed.map((x) => chip(`-tag ${x}`, "state-deleted")),
    !(d.aliases.added.length + d.aliases.removed.length + d.tags.added.length + d.tags.removed.length) ? h("span", { class: "muted" }, "no change") : null), diffBox);
}

// ------------------------------------------------------------------------------ runs
async function runsPage(params) {
  const project = params.get("project") || "", q = params.get("q") || "", order = params.get("order") || "", cursor = params.get("cursor") || "";
  main.append(h("h1", {}, "Runs"));
  const qInput = h("input", { type: "search", class: "query", id: "run-query", value: q, placeholder: "filter: state=finished config.lr<0.01 group=sweep-1", "aria-label": "run filter" });
  const orderInput = h("input", { type: "text", id: "run-order", value: order, placeholder: "order: -summary.val_acc", "aria-label": "order" });
  const form = h("form", { class: "toolbar" }, qInput, orderInput, h("button", { type: "submit", class: "primary" }, "Apply"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); navigate(pageUrl("/runs", { project, q: qInput.value.trim(), order: orderInput.value.trim() })); });
  main.append(form);
  let list;
  try {
    list = await api(pageUrl("/api/v1/runs", { project, q, order, cursor, limit: 50 }));
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 400) throw e;
    main.append(h("div", { class: "error", id: "query-error" }, e.body.message.split("\n")[0], e.body.column ? h("pre", {}, `${q}\n${" ".repeat(e.body.column - 1)}^`) : null));
    return;
  }
  const keys = (field) => [...new Set(list.items.flatMap((r) => Object.keys(r[field] || {}).filter((k) => !k.startsWith("_"))))].sort().slice(0, 6);
  const value = (x) => x === undefined ? "" : typeof x === "number" ? String(Math.round(x * 1e4) / 1e4) : JSON.stringify(x);
  const sortBy = (key) => navigate(pageUrl("/runs", { project, q, order: order === `-${key}` ? key : `-${key}` }));
  const columns = [
    { label: "run", cell: (r) => runLink(r.id, r.name || r.id) }, { label: "project", cell: (r) => r.project },
    { label: "state", cell: (r) => chip(r.state, `state-${r.state}`) }, { label: "group", cell: (r) => r.group || "" },
    { label: "job", cell: (r) => r.job_type || "" }, { label: "created", cell: (r) => when(r.created_at) },
    ...keys("config").map((k) => ({ label: `config.${k}`, num: true, cell: (r) => value((r.config || {})[k]) })),
    ...keys("summary").map((k) => ({ label: `summary.${k}`, num: true, cell: (r) => value((r.summary || {})[k]), key: `summary.${k}` })),
  ];
  const tbl = table(columns, list.items);
  tbl.querySelectorAll("th").forEach((th, i) => {
    const c = columns[i];
    if (!c.key) return;
    th.classList.add("sortable");
    if (order.replace(/^-/, "") === c.key) th.classList.add("sorted", ...(order.startsWith("-") ? ["desc"] : []));
    th.addEventListener("click", () => sortBy(c.key));
  });
  main.append(tbl, pager(list.next_cursor, pageUrl("/runs", { project, q, order }), pageUrl("/runs", { project, q, order, cursor: list.next_cursor }), cursor));
}

async function runPage(runId) {
  const path = `/api/v1/runs/${enc(runId)}`;
  const [r, inputs, outputs] = await Promise.all([api(path), api(`${path}/inputs?limit=200`), api(`${path}/outputs?limit=200`)]);
  const kv = (obj) => h("dl", { class: "kv" }, Object.entries(obj || {}).flatMap(([k, x]) => [h("dt", {}, k), h("dd", { class: "mono" }, JSON.stringify(x))]));
  const vcols = [{ label: "version", cell: versionLink }, { label: "type", cell: (v) => v.type }, { label: "aliases", cell: aliasChips },
    { label: "size", num: true, cell: (v) => humanSize(v.logical_bytes) }, { label: "state", cell: (v) => chip(v.state, `state-${v.state}`) }];
  main.append(h("h1", {}, `Run ${r.name || r.id}`, " ", chip(r.state, `state-${r.state}`)),
    h("dl", { class: "kv" }, h("dt", {}, "id"), h("dd", { class: "mono" }, r.id), h("dt", {}, "project"), h("dd", {}, r.project),
      h("dt", {}, "group"), h("dd", {}, r.group || "-"), h("dt", {}, "job type"), h("dd", {}, r.job_type || "-"),
      h("dt", {}, "created"), h("dd", {}, when(r.created_at)), h("dt", {}, "finished"), h("dd", {}, when(r.finished_at)),
      h("dt", {}, "tags"), h("dd", {}, r.tags.map((t) => chip(t, "tag"))), h("dt", {}, "notes"), h("dd", {}, r.notes || "-")),
    h("div", { class: "grid2" }, h("div", {}, h("h2", {}, "Inputs"), h("div", { id: "run-inputs" }, table(vcols, inputs.items)),
      h("h2", {}, "Outputs"), h("div", { id: "run-outputs" }, table(vcols, outputs.items))),
    h("div", {}, h("h2", {}, "Config"), kv(r.config), h("h2", {}, "Summary"), kv(r.summary))));
}

// ------------------------------------------------------------------------------ API docs
async function docsPage() {
  const spec = await api("/api/v1/openapi.json");
  main.append(h("h1", {}, spec.info.title, " ", chip(spec.info.version)), h("p", {}, spec.info.description),
    h("p", {}, "The machine-readable document: ", h("a", { href: "/api/v1/openapi.json", target: "_blank" }, "/api/v1/openapi.json")));
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      main.append(h("div", { class: "box", "data-op": `${method} ${path}` }, h("h2", {}, h("span", { class: "chip" }, method.toUpperCase()), " ", h("span", { class: "mono" }, path)),
        h("p", {}, op.summary), op.parameters.length ? table([{ label: "parameter", cell: (p) => p.name }, { label: "in", cell: (p) => p.in },
          { label: "required", cell: (p) => p.required ? "yes" : "" }, { label: "description", cell: (p) => p.description }], op.parameters) : null,
        op.requestBody ? h("p", {}, "body: ", h("code", {}, op.requestBody.description)) : null));
    }
  }
}

// ------------------------------------------------------------------------------ start
api("/api/v1/config").then((c) => { config = c; document.getElementById("mode").textContent = c.read_only ? "read-only" : "editing on"; })
  .catch(() => {}).finally(render);
