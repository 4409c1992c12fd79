// Flotilla web UI: plain JavaScript, no dependencies. It renders the view
// named by the URL hash from the JSON API and re-renders on every
// server-sent event, so it stays live without a reload.
"use strict";

const TOKEN_KEY = "flotilla-token";
const $ = (sel) => document.querySelector(sel);

// el builds an element: attrs are properties or data-/aria- attributes;
// children are nodes or strings (always text, never HTML).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("data-") || k.startsWith("aria-") || k === "title" || k === "colspan") e.setAttribute(k, v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e[k] = v;
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// ---- token and API ----

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

// Without a pasted token the UI runs on the single sign-on session cookie
// (HttpOnly: the script never sees it). Requests that change state then
// echo the CSRF cookie in a header, which no other site can read or send.
function csrf() {
  const m = document.cookie.match(/(?:^|; )flotilla_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function authHeaders(method) {
  if (token()) return { Authorization: "Bearer " + token() };
  return method === "GET" ? {} : { "X-Flotilla-CSRF": csrf() };
}

// who is the signed-in caller (GET /api/v1/whoami): the UI shows only the
// actions its role allows; the hub checks every call again.
let who = null;

function canDeploy(project) {
  if (!who) return false;
  const role = who.role, projects = who.projects || [];
  return role === "admin" || (role === "deployer" && projects.includes(project || "default"));
}

// A token is never taken from the address: URLs end up in browser
// history, proxy logs and Referer headers. People sign in with the form.

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const opts = { method, headers: authHeaders(method) };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!resp.ok) {
    if (resp.status === 401) showLogin((data && data.error) || "token refused");
    throw new APIError(resp.status, (data && data.error) || resp.status + " " + resp.statusText);
  }
  return data;
}

// listAll reads every page of a paginated list.
async function listAll(path) {
  let items = [], after = "";
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", path + sep + "limit=1000" + (after ? "&after=" + encodeURIComponent(after) : ""));
    items = items.concat(page.items || []);
    if (!page.next) return items;
    after = page.next;
  }
}

// ---- login ----

function showLogin(msg) {
  $("#login").hidden = false;
  $("#view").hidden = true;
  $("#logout").hidden = true;
  $("#login-error").textContent = msg || "";
  stopEvents();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  localStorage.setItem(TOKEN_KEY, $("#token").value.trim());
  $("#token").value = "";
  try {
    await api("GET", "/api/v1/whoami");
    await start();
  } catch (e) {
    $("#login-error").textContent = e.message;
  }
});

$("#logout").addEventListener("click", async () => {
  if (token()) localStorage.removeItem(TOKEN_KEY);
  else await fetch("/auth/logout", { method: "POST", headers: authHeaders("POST") });
  who = null;
  showLogin("");
});

// offerSSO shows the single sign-on link when the hub has a provider.
async function offerSSO() {
  try {
    const resp = await fetch("/auth/info");
    const data = resp.ok ? await resp.json() : null;
    $("#sso").hidden = !(data && data.enabled);
  } catch (_) {
    $("#sso").hidden = true;
  }
}

// ---- live updates (server-sent events read with fetch, which can send
// the bearer header that EventSource cannot) ----

let events = null;

function stopEvents() {
  if (events) events.abort();
  events = null;
  $("#live").className = "live off";
}

async function startEvents() {
  stopEvents();
  const ctl = new AbortController();
  events = ctl;
  let retry = 500;
  while (events === ctl) {
    try {
      const resp = await fetch("/api/v1/events", { headers: authHeaders("GET"), signal: ctl.signal });
      if (resp.status === 401) { showLogin("token refused"); return; }
      if (!resp.ok) throw new Error("events: " + resp.status);
      $("#live").className = "live on";
      retry = 500;
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (msg.split("\n").some((l) => l.startsWith("data:"))) scheduleRender();
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    $("#live").className = "live off";
    await new Promise((r) => setTimeout(r, retry)); // reconnect with backoff
    retry = Math.min(retry * 2, 10000);
  }
}

// ---- rendering ----

let rendering = false, again = false;

// scheduleRender coalesces: at most one render runs, and one more follows
// if anything changed meanwhile.
async function scheduleRender() {
  if (rendering) { again = true; return; }
  rendering = true;
  try {
    do {
      again = false;
      await render();
    } while (again);
  } finally {
    rendering = false;
  }
}

function flash(msg, isError) {
  const f = $("#flash");
  f.textContent = msg;
  f.className = "flash" + (isError ? " error" : "");
  f.hidden = !msg;
}

async function render() {
  const hash = location.hash || "#/";
  let node;
  try {
    const logs = hash.match(/^#\/apps\/([^/]+)\/clusters\/([^/]+)\/logs\/([^/]+)\/([^/]+)$/);
    const tree = hash.match(/^#\/apps\/([^/]+)\/clusters\/([^/]+)$/);
    if (logs) {
      // A log view streams until left: a re-render (any change in the
      // fleet) must not restart it.
      if ($("#view").dataset.logs === hash) return;
      node = logView(...logs.slice(1).map(decodeURIComponent));
    } else if (tree) node = await treeView(...tree.slice(1).map(decodeURIComponent));
    else if (hash.startsWith("#/apps/")) node = await appView(decodeURIComponent(hash.slice(7)));
    else if (hash === "#/clusters") node = await clustersView();
    else node = await fleetView();
  } catch (e) {
    if (e.status === 401) return;
    node = el("p", { class: "error" }, e.message);
  }
  const view = $("#view");
  if (!node.dataset || node.dataset.logs !== hash) stopLog();
  view.dataset.logs = (node.dataset && node.dataset.logs) || "";
  // Keep open diffs open across re-renders.
  const open = new Set([...view.querySelectorAll("details[open]")].map((d) => d.dataset.key));
  view.replaceChildren(node);
  for (const d of view.querySelectorAll("details")) if (open.has(d.dataset.key)) d.open = true;
}

const badge = (kind, value) => el("span", { class: "badge " + kind + "-" + value }, value);

async function fleetView() {
  const [apps, clusters] = await Promise.all([listAll("/api/v1/apps"), listAll("/api/v1/clusters")]);
  const names = clusters.map((c) => c.name);
  const head = el("tr", {}, el("th", {}, "Application"), el("th", {}, "Status"), el("th", {}, ""),
    names.map((n) => el("th", { class: "cluster" }, el("a", { href: "#/clusters" }, n),
      el("span", { class: "dot " + (clusters.find((c) => c.name === n).connected ? "up" : "down") }))));
  const rows = apps.map((a) => {
    const byCluster = Object.fromEntries(a.clusters.map((c) => [c.cluster, c]));
    return el("tr", { "data-app-row": a.name },
      el("td", {}, el("a", { href: "#/apps/" + encodeURIComponent(a.name) }, a.name),
        a.error ? el("p", { class: "error", "data-app-error": a.name }, a.error) : null,
        (a.warnings || []).map((w) => el("p", { class: "warning" }, w))),
      el("td", {}, badge("sync", a.sync), " ", badge("health", a.health)),
      el("td", {}, canDeploy(a.project) ? el("button", { "data-sync-app": a.name, onclick: () => sync(a.name, "") }, "Sync") : null),
      names.map((n) => {
        const c = byCluster[n];
        if (!c) return el("td", { class: "cell none", "data-app": a.name, "data-cluster": n }, "·");
        return el("td", {
          class: "cell", "data-app": a.name, "data-cluster": n, "data-sync": c.sync, "data-health": c.health,
          title: [c.error, c.message, c.pinned && "pinned to " + c.pinned].filter(Boolean).join("\n") || c.sync + " / " + c.health,
        }, badge("sync", c.sync), el("br"), badge("health", c.health), c.pinned ? el("span", { class: "pin" }, el("br"), "pinned") : null);
      }));
  });
  return el("div", {},
    el("h1", {}, "Fleet"),
    el("p", { class: "muted" }, `${apps.length} applications on ${clusters.length} clusters`),
    el("table", { class: "matrix" }, el("thead", {}, head), el("tbody", {}, rows)));
}

function ago(ts) {
  if (!ts) return "never";
  const s = Math.max(0, Math.round((Date.now() - new Date(ts).getTime()) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

async function clustersView() {
  const clusters = await listAll("/api/v1/clusters");
  return el("div", {},
    el("h1", {}, "Clusters"),
    el("table", {},
      el("thead", {}, el("tr", {}, ["Name", "Connected", "Last seen", "Agent", "Enrolled", "Labels"].map((h) => el("th", {}, h)))),
      el("tbody", {}, clusters.map((c) => el("tr", { "data-cluster-row": c.name },
        el("td", {}, c.name),
        el("td", { "data-connected": String(c.connected) }, el("span", { class: "dot " + (c.connected ? "up" : "down") }), c.connected ? " connected" : " not connected"),
        el("td", {}, c.connected ? "now" : ago(c.lastSeen)),
        el("td", {}, c.agentVersion || "–"),
        el("td", {}, c.enrolled ? "yes" : "no"),
        el("td", {}, Object.entries(c.labels || {}).sort().map(([k, v]) => el("span", { class: "label" }, k + "=" + v))))))));
}

// An app with several sources has one commit per source, joined by commas.
const short = (rev) => (rev ? rev.split(",").map((r) => r.slice(0, 8)).join(",") : "–");

// orphanedTable lists what the agent found orphaned in the app's destination
// namespace (the project's orphanedResources); nothing when it found none.
function orphanedTable(c) {
  const orph = c.orphaned;
  if (!orph || (!orph.count && !orph.error)) return null;
  const more = orph.count - (orph.objects || []).length;
  return el("details", { class: "orphaned", "data-orphaned": c.cluster, open: true },
    el("summary", {}, orph.count + " orphaned resources (in the destination namespace, managed by no app)"),
    orph.error ? el("p", { class: "error" }, orph.error) : null,
    el("table", {},
      el("thead", {}, el("tr", {}, ["Kind", "Namespace", "Name"].map((h) => el("th", {}, h)))),
      el("tbody", {}, (orph.objects || []).map((o) => el("tr", { "data-orphan": o.kind + "/" + o.name },
        el("td", {}, o.group ? o.group + "/" + o.kind : o.kind), el("td", {}, o.namespace), el("td", {}, o.name))))),
    more > 0 ? el("p", { class: "muted" }, "and " + more + " more") : null);
}

async function appView(name) {
  const [a, history, ro] = await Promise.all([
    api("GET", "/api/v1/apps/" + encodeURIComponent(name)),
    api("GET", "/api/v1/apps/" + encodeURIComponent(name) + "/history?limit=50"),
    // An app without a rollout strategy answers 404: no rollout section.
    api("GET", "/api/v1/apps/" + encodeURIComponent(name) + "/rollout").catch((e) => { if (e.status === 404) return null; throw e; }),
  ]);
  const deploy = canDeploy(a.project);
  const sections = a.clusters.map((c) => el("section", { class: "target", "data-target": c.cluster },
    el("h2", {}, c.cluster, " ", badge("sync", c.sync), " ", badge("health", c.health),
      c.connected ? null : el("span", { class: "muted" }, " agent not connected"), " ",
      el("a", { href: "#/apps/" + encodeURIComponent(a.name) + "/clusters/" + encodeURIComponent(c.cluster), "data-tree-link": c.cluster, class: "small" }, "live resources")),
    el("p", {}, "Revision ", el("code", {}, short(c.revision)),
      c.pinned ? el("span", { class: "pinned" }, " pinned to ", el("code", {}, short(c.pinned)), " — auto-sync suspended ") : null,
      c.rollout ? el("span", { class: "waiting", "data-waiting": c.cluster }, " " + c.rollout + " ") : null,
      " ", deploy ? el("button", { "data-sync-cluster": c.cluster, onclick: () => sync(a.name, c.cluster) }, "Sync") : null,
      c.pinned && deploy ? el("button", { "data-unpin-cluster": c.cluster, onclick: () => unpin(a.name, c.cluster) }, "Unpin") : null),
    c.error ? el("p", { class: "error" }, c.error) : null,
    c.message ? el("p", { class: "muted" }, c.message) : null,
    el("table", {},
      el("thead", {}, el("tr", {}, ["Kind", "Namespace", "Name", "Sync", "Health", "Message / drift"].map((h) => el("th", {}, h)))),
      el("tbody", {}, (c.objects || []).map((o) => el("tr", {},
        el("td", {}, o.kind), el("td", {}, o.namespace || "–"), el("td", {}, o.name),
        el("td", {}, badge("sync", o.sync)), el("td", {}, badge("health", o.health)),
        el("td", {}, o.message || "",
          o.diff ? el("details", { "data-key": c.cluster + "/" + o.kind + "/" + o.namespace + "/" + o.name },
            el("summary", {}, "diff"), el("pre", { class: "diff" }, o.diff.split("\n").map((l) =>
              el("span", { class: l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : "" }, l + "\n")))) : null))))),
    (c.conditions || []).map((o) => el("p", { class: "warning", "data-condition": o.type }, o.type + ": " + o.message)),
    orphanedTable(c)));
  const hist = el("table", {},
    el("thead", {}, el("tr", {}, ["ID", "Cluster", "Revision", "Finished", "By", "Result", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, (history.items || []).map((h) => el("tr", {},
      el("td", {}, h.id), el("td", {}, h.cluster), el("td", {}, el("code", {}, short(h.revision))),
      el("td", {}, new Date(h.finishedAt).toLocaleString()), el("td", {}, h.initiatedBy || "–"),
      el("td", {}, badge("result", h.result || "Unknown")),
      el("td", {}, deploy ? el("button", { "data-rollback": h.id, onclick: () => rollback(a.name, h) }, "Rollback") : null)))));
  return el("div", {},
    el("p", {}, el("a", { href: "#/" }, "← Fleet")),
    el("h1", {}, a.name, " ", badge("sync", a.sync), " ", badge("health", a.health)),
    el("p", { class: "muted" }, "Defined in ", a.file || "–",
      a.parent ? [" · child of ", el("a", { href: "#/apps/" + encodeURIComponent(a.parent), "data-parent": a.parent }, a.parent)] : null,
      " · project ", el("span", { "data-project": a.project }, a.project || "default"),
      " · revision ", el("code", {}, short(a.revision)), " ",
      deploy ? el("button", { "data-sync-app": a.name, onclick: () => sync(a.name, "") }, "Sync all") : null),
    a.error ? el("p", { class: "error" }, a.error) : null,
    (a.warnings || []).map((w) => el("p", { class: "warning" }, w)),
    ro ? rolloutSection(ro, deploy) : null,
    sections,
    el("h2", {}, "History"),
    hist);
}

// rolloutSection shows an app's progressive rollout (GET .../rollout):
// its phase and why it stopped or waits, each step with its clusters, and
// the actions the phase allows.
function rolloutSection(ro, deploy) {
  const active = ro.phase === "Progressing" || ro.phase === "WaitingApproval";
  const actions = !deploy ? [] : [
    active && !ro.paused ? ["pause", "Pause"] : null,
    ro.paused ? ["resume", "Resume"] : null,
    ro.phase === "WaitingApproval" ? ["approve", "Approve step " + ro.currentStep] : null,
    ro.phase !== "Completed" && ro.phase !== "Aborted" ? ["abort", "Abort"] : null,
    ro.phase === "Halted" || ro.phase === "Aborted" ? ["retry", "Retry"] : null,
  ].filter(Boolean);
  return el("section", { class: "rollout", "data-rollout": ro.app, "data-phase": ro.phase, "data-paused": String(!!ro.paused) },
    el("h2", {}, "Rollout ", el("span", { class: "badge rollout-" + ro.phase, "data-rollout-phase": "" }, ro.phase + (ro.paused ? " (paused)" : "")),
      " ", el("code", {}, short(ro.from)), " → ", el("code", {}, short(ro.to)), " ",
      actions.map(([act, label]) => el("button", { "data-rollout-action": act, onclick: () => rolloutAction(ro.app, act) }, label))),
    ro.reason ? el("p", { class: ro.phase === "Halted" ? "error" : "muted", "data-rollout-reason": "" }, ro.reason) : null,
    ro.rolledBack ? el("p", { class: "error" }, "The reached clusters were returned to ", el("code", {}, short(ro.from)), ".") : null,
    ro.gate ? el("p", { class: ro.gate.ok ? "muted" : "error" }, "Gate (step " + ro.gate.step + "): " + (ro.gate.ok ? "passed " : "failed ") + ro.gate.detail) : null,
    el("table", {},
      el("thead", {}, el("tr", {}, ["Step", "Name", "State", "Clusters"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ro.steps.map((st) => el("tr", { "data-step": st.number, "data-step-state": st.state, class: st.number === ro.currentStep ? "current" : "" },
        el("td", {}, st.number), el("td", {}, st.name, st.soak ? el("span", { class: "muted" }, " soak " + st.soak) : null, st.approval ? el("span", { class: "muted" }, " approval") : null),
        el("td", {}, el("span", { class: "badge step-" + st.state }, st.state)),
        el("td", {}, st.clusters.map((c) => el("span", { class: "label", "data-step-cluster": c.cluster, "data-reached": String(c.reached) },
          c.cluster, " ", el("code", {}, short(c.revision)), " ", badge("health", c.health)))))))));
}

async function rolloutAction(app, action) {
  try {
    const ro = await api("POST", "/api/v1/apps/" + encodeURIComponent(app) + "/rollout/" + action);
    flash(`Rollout of ${app}: ${action} — now ${ro.phase}${ro.paused ? " (paused)" : ""}`);
    scheduleRender();
  } catch (e) {
    flash(e.message, true);
  }
}

// ---- live view: what the app's agent reads from its cluster now ----

const appHash = (app) => "#/apps/" + encodeURIComponent(app);
const clusterHash = (app, cluster) => appHash(app) + "/clusters/" + encodeURIComponent(cluster);

// treeView is an app's cluster page: its live resource tree, each object
// under its owner, with health colours; a Pod opens its log.
async function treeView(app, cluster) {
  const r = await api("GET", "/api/v1/apps/" + encodeURIComponent(app) + "/resources?cluster=" + encodeURIComponent(cluster));
  const t = (r.clusters || [])[0] || { nodes: [], error: "no answer" };
  const kids = {};
  const roots = [];
  for (const n of t.nodes || []) {
    if (n.parents && n.parents.length) (kids[n.parents[0]] = kids[n.parents[0]] || []).push(n);
    else roots.push(n);
  }
  const seen = new Set();
  const item = (n) => {
    const label = n.kind === "Pod" && n.uid
      ? el("a", { href: clusterHash(app, cluster) + "/logs/" + encodeURIComponent(n.namespace || "") + "/" + encodeURIComponent(n.name), "data-pod": n.name }, n.name)
      : n.name;
    const children = n.uid && !seen.has(n.uid) ? (seen.add(n.uid), kids[n.uid] || []) : [];
    return el("li", { "data-node": n.kind + "/" + n.name, "data-health": n.health },
      el("span", { class: "node health-" + n.health }, n.kind), " ", label,
      n.namespace ? el("span", { class: "muted" }, " " + n.namespace) : null, " ", badge("health", n.health),
      n.message ? el("span", { class: "muted" }, " " + n.message) : null,
      children.length ? el("ul", {}, children.map(item)) : null);
  };
  return el("div", {},
    el("p", {}, el("a", { href: appHash(app) }, "← " + app)),
    el("h1", {}, app, " on ", cluster),
    el("p", { class: "muted" }, "Live resources, read by the cluster's agent just now"),
    t.error ? el("p", { class: "error" }, t.error) : el("ul", { class: "tree" }, roots.map(item)));
}

let logCtl = null;

function stopLog() {
  if (logCtl) logCtl.abort();
  logCtl = null;
}

// logView follows a pod's log through the hub until the page leaves it.
function logView(app, cluster, namespace, pod) {
  const out = el("pre", { class: "log", id: "log" });
  const state = el("p", { class: "muted", id: "log-state" }, "connecting…");
  const node = el("div", { "data-logs": location.hash },
    el("p", {}, el("a", { href: clusterHash(app, cluster) }, "← " + app + " on " + cluster)),
    el("h1", {}, "Log of ", pod), state, out);
  stopLog();
  const ctl = new AbortController();
  logCtl = ctl;
  const q = new URLSearchParams({ cluster, kind: "Pod", name: pod, tail: "200", follow: "true" });
  if (namespace) q.set("namespace", namespace);
  (async () => {
    try {
      const resp = await fetch("/api/v1/apps/" + encodeURIComponent(app) + "/logs?" + q, { headers: { Authorization: "Bearer " + token() }, signal: ctl.signal });
      if (!resp.ok) {
        const text = await resp.text();
        let msg = resp.status + " " + resp.statusText;
        try { msg = JSON.parse(text).error || msg; } catch (_) { /* not JSON */ }
        state.textContent = msg;
        state.className = "error";
        return;
      }
      state.textContent = "following container " + (resp.headers.get("X-Flotilla-Container") || "");
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out.append(dec.decode(value, { stream: true }));
        if (out.textContent.length > 1 << 20) out.textContent = out.textContent.slice(-(1 << 19)); // keep the page small
        out.scrollTop = out.scrollHeight;
      }
      state.textContent = "log ended";
    } catch (e) {
      if (!ctl.signal.aborted) { state.textContent = e.message; state.className = "error"; }
    }
  })();
  return node;
}

// ---- actions ----

async function sync(app, cluster) {
  try {
    const r = await api("POST", "/api/v1/apps/" + encodeURIComponent(app) + "/sync", cluster ? { cluster } : {});
    const failed = Object.entries(r.failed || {}).map(([c, e]) => c + ": " + e);
    flash("Sync of " + app + " sent to " + (r.sent.join(", ") || "no cluster") + (failed.length ? "; not sent to " + failed.join(", ") : ""), failed.length > 0);
  } catch (e) {
    flash(e.message, true);
  }
}

async function rollback(app, entry) {
  if (!confirm(`Roll ${app} on ${entry.cluster} back to ${short(entry.revision)}? Auto-sync stays suspended until unpin.`)) return;
  try {
    const r = await api("POST", "/api/v1/apps/" + encodeURIComponent(app) + "/rollback", { historyId: entry.id });
    flash(`${app} pinned to ${short(r.revision)}: ` + r.targets.map((t) => t.cluster + " " + t.sync + (t.message ? " (" + t.message + ")" : "")).join(", "));
  } catch (e) {
    flash(e.message, true);
  }
}

async function unpin(app, cluster) {
  try {
    await api("POST", "/api/v1/apps/" + encodeURIComponent(app) + "/unpin", { cluster });
    flash(`${app} unpinned on ${cluster}; auto-sync follows git again`);
  } catch (e) {
    flash(e.message, true);
  }
}

// ---- start ----

async function start() {
  try {
    const resp = await fetch("/api/v1/whoami", { headers: authHeaders("GET") });
    who = resp.ok ? await resp.json() : null;
  } catch (_) {
    who = null;
  }
  if (!who) {
    if (token()) localStorage.removeItem(TOKEN_KEY);
    showLogin("");
    offerSSO();
    return;
  }
  const role = who.role, projects = who.projects || [];
  $("#who").textContent = who.name + " · " + (role === "deployer" ? "deployer of " + projects.join(", ") : role);
  $("#login").hidden = true;
  $("#view").hidden = false;
  $("#logout").hidden = false;
  scheduleRender();
  startEvents();
}

window.addEventListener("hashchange", () => { flash(""); scheduleRender(); });
start();
