// clamator dashboard. Renders from the JSON API with DOM text nodes only (never innerHTML):
// whatever an envelope or a name holds is shown as text, not run.
"use strict";

const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const PREFIX = meta("clamator-prefix");
const CSRF = meta("clamator-csrf");
const READ_ONLY = meta("clamator-read-only") === "true";

// el("tag#id.class.class", {attr: v}, child, "text", …)
function el(spec, attrs, ...children) {
  const id = (spec.match(/#([\w-]+)/) || [])[1];
  const [tag, ...classes] = spec.replace(/#[\w-]+/, "").split(".");
  const node = document.createElement(tag);
  if (id) node.id = id;
  if (classes.length) node.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const fmtRate = (r) => (r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1));
function fmtAge(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
function prettyJson(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; }
}

// header cells; a leading "#" marks a numeric column
const heads = (names) => el("thead", {}, el("tr", {}, names.map((h) =>
  h.startsWith("#") ? el("th.num", { text: h.slice(1) }) : el("th", { text: h }))));

function sparkline(values) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 140 26");
  svg.setAttribute("preserveAspectRatio", "none");
  const base = document.createElementNS(NS, "line");
  for (const [k, v] of [["x1", 0], ["y1", 25], ["x2", 140], ["y2", 25]]) base.setAttribute(k, v);
  svg.append(base);
  const pts = values.slice(-120);
  if (pts.length > 1) {
    const max = Math.max(1, ...pts);
    const step = 140 / (pts.length - 1);
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", pts.map((v, i) => `${(i * step).toFixed(1)},${(24 - (v / max) * 22).toFixed(1)}`).join(" "));
    svg.append(line);
  }
  const title = document.createElementNS(NS, "title");
  title.textContent = `last ${pts.length} samples, max ${fmtRate(Math.max(0, ...pts))} calls/s`;
  svg.append(title);
  return svg;
}

async function post(path, body) {
  // With --token, the login cookie goes along (same origin) and authorizes the action too.
  const headers = { "Content-Type": "application/json", "X-Clamator-Csrf": CSRF };
  const res = await fetch(path, { method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin" });
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (res.status === 401) window.location.reload(); // the login page
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

function setStatus(text, cls) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = `status ${cls}`;
}

// ---------------------------------------------------------------- overview
let lastOverview = null;

function renderOverview(o) {
  const app = document.getElementById("app");
  const services = o.services.length
    ? el("table#services", {},
        el("thead", {}, el("tr", {},
          el("th", { text: "service" }), el("th.num", { text: "calls/s" }), el("th", { text: "last minutes" }),
          el("th.num", { text: "stream length" }), el("th.num", { text: "pending" }), el("th.num", { text: "oldest pending" }),
          el("th.num", { text: o.broker === "nats" ? "servers" : "consumers alive" }),
          el("th.num", { text: "dead consumers" }), el("th.num", { text: "dead letters" }))),
        el("tbody", {}, o.services.map((s) =>
          el("tr", { "data-service": s.service },
            el("td", {}, el("a", { href: `/services/${encodeURIComponent(s.service)}`, text: s.service })),
            el("td.num.rate", { text: fmtRate(s.rate) }),
            el("td", {}, sparkline(s.history)),
            el("td.num", { text: fmtInt(s.length) }),
            el("td.num" + (s.pending ? ".warn" : ""), { text: fmtInt(s.pending) }),
            el("td.num", { text: fmtAge(s.oldest_pending_age_ms) }),
            // nobody alive is bad when work waits; an idle stream on Redis 7.0 lists a consumer
            // only once it has received an entry
            el("td.num" + (s.consumers_alive ? ".ok" : (s.pending || s.lag ? ".bad" : ".muted")),
              { text: fmtInt(s.consumers_alive), title: s.consumers_alive ? null : (o.broker === "nats"
                ? "no server of this service answered the status request"
                : "no consumer idle for less than --alive-within") }),
            el("td.num" + (s.consumers_dead ? ".warn" : ""), { text: fmtInt(s.consumers_dead),
              title: s.consumers_dead === null ? "NATS does not keep servers that are gone" : null }),
            el("td.num.dead" + (s.dead_letters ? ".bad" : ""), { text: fmtInt(s.dead_letters) })))))
    : el("p.empty", { text: `No command streams under ${o.broker === "nats" ? `${PREFIX}_cmds_*` : `${PREFIX}:cmds:*`} yet.` });
  const replies = o.broker === "nats"
    ? el("p.empty", { text: "Replies travel over core NATS to each client's subject: nothing is stored." })
    : o.reply_streams.length
    ? el("table#replies", {},
        el("thead", {}, el("tr", {}, el("th", { text: "reply stream" }), el("th.num", { text: "length" }), el("th.num", { text: "last reply" }))),
        el("tbody", {}, o.reply_streams.map((r) =>
          el("tr", {}, el("td", {}, el("code", { text: r.stream })), el("td.num", { text: fmtInt(r.length) }),
            el("td.num", { text: r.age_ms === null ? "–" : `${fmtAge(r.age_ms)} ago` })))))
    : el("p.empty", { text: "No client reply streams." });
  const total = o.services.reduce((a, s) => a + s.rate, 0);
  app.replaceChildren(...[
    o.error ? el("div.error", { text: o.error }) : null,
    el("div.cards", {},
      el("div.card", {}, el("div.v#total-rate", { text: fmtRate(total) }), el("div.k", { text: "calls/s, all services" })),
      el("div.card", {}, el("div.v", { text: fmtInt(o.services.length) }), el("div.k", { text: "services" })),
      el("div.card", {}, el("div.v", { text: fmtInt(o.services.reduce((a, s) => a + s.pending, 0)) }), el("div.k", { text: "pending" })),
      el("div.card", {}, el("div.v", { text: fmtInt(o.services.reduce((a, s) => a + s.dead_letters, 0)) }), el("div.k", { text: "dead letters" }))),
    el("section", {}, el("h2", { text: "Services" }), services),
    el("section", {}, el("h2", { text: o.broker === "nats" ? "Replies" : `Reply streams (${o.reply_streams.length})` }), replies),
  ].filter(Boolean));
}

// ---------------------------------------------------------------- service page
const selected = new Set();
let shownDead = null; // ids of the dead letters shown; null: render the next list
let serviceName = null;

function deadLetterRow(d) {
  const box = el("input", { type: "checkbox", "data-id": d.id, checked: selected.has(d.id),
    onchange: (e) => (e.target.checked ? selected.add(d.id) : selected.delete(d.id)) });
  const fields = d.fields.map(([k, v]) => `${k}: ${v}`).join("\n");
  return el("tr", { "data-dead-id": d.id },
    el("td", {}, READ_ONLY ? null : box),
    el("td", {}, el("code", { text: d.id })),
    el("td", { text: d.reason }),
    el("td.num", { text: d.deliveries === null ? "–" : d.deliveries }),
    el("td", {},
      el("details", {},
        el("summary", { text: d.truncated ? "envelope (cut at 16 KiB)" : "envelope" }),
        el("pre.envelope", { text: prettyJson(d.envelope) }),
        el("pre.muted", { text: `${/^\d+$/.test(d.entry_id) ? "sequence" : "entry"} ${d.entry_id}\n${fields}` }))),
    el("td", {}, READ_ONLY ? null : [
      el("button.replay", { text: "replay", onclick: () => act("replay", [d.id]) }), " ",
      el("button.danger.drop", { text: "drop", onclick: () => act("drop", [d.id]) })]));
}

async function act(action, ids) {
  const what = ids === "all" ? `all dead letters of ${serviceName}` : `${ids.length} dead letter(s)`;
  if (!window.confirm(`${action === "replay" ? "Replay" : "Drop"} ${what}?`)) return;
  const note = document.getElementById("dead-note");
  try {
    const r = await post(`/api/services/${encodeURIComponent(serviceName)}/dead-letters/${action}`,
      ids === "all" ? { all: true } : { ids });
    note.textContent = `${action === "replay" ? "replayed" : "dropped"} ${r.count} dead letter(s)`;
    note.className = "ok";
    selected.clear();
    shownDead = null;
    await loadService();
  } catch (e) {
    note.textContent = `${action} failed: ${e.message}`;
    note.className = "bad";
  }
}

function callForm(methods) {
  const method = el("input#call-method", { type: "text", value: `${serviceName}.`, list: "call-methods" });
  const params = el("textarea#call-params", {}, "{}");
  const timeout = el("input#call-timeout", { type: "text", value: "10000" });
  const out = el("pre#call-result", { text: "" });
  const docs = el("div#method-docs");
  const list = el("datalist#call-methods", {}, (methods || []).map((m) => el("option", { value: `${serviceName}.${m.name}` })));
  const showDoc = () => {
    const m = (methods || []).find((x) => `${serviceName}.${x.name}` === method.value);
    docs.replaceChildren(m ? el("div", {},
      m.description ? el("p", { text: m.description }) : null,
      m.notification ? el("p.warn", { text: "a notification: sent without an id, nothing comes back" }) : null,
      el("details", {}, el("summary", { text: "params schema" }), el("pre", { text: JSON.stringify(m.params, null, 2) }))) : "");
  };
  method.addEventListener("input", showDoc);
  const go = el("button#call-go", { text: "call", onclick: async () => {
    out.textContent = "calling…";
    out.className = "";
    let body;
    try { body = JSON.parse(params.value || "{}"); } catch (e) { out.textContent = `params are not JSON: ${e.message}`; out.className = "bad"; return; }
    try {
      const r = await post("/api/call", { method: method.value, params: body, timeout_ms: Number(timeout.value) || 10000 });
      out.textContent = JSON.stringify(r, null, 2);
      out.className = r.result !== undefined ? "ok" : "bad";
    } catch (e) { out.textContent = `call failed: ${e.message}`; out.className = "bad"; }
  } });
  return el("section#call", {}, el("h2", { text: "Call a method" }), list,
    el("div.form", {},
      el("label", { for: "call-method", text: "method" }), el("div", {}, method, docs),
      el("label", { for: "call-params", text: "params (JSON)" }), params,
      el("label", { for: "call-timeout", text: "timeout (ms)" }), timeout,
      el("span"), el("div", {}, go)),
    out);
}

function renderService(d) {
  const app = document.getElementById("app");
  let page = document.getElementById("service-page");
  if (!page) {
    page = el("div#service-page", {},
      el("h1", {}, el("a", { href: "/", text: "services" }), " / ", el("span", { text: d.service })),
      el("div.cards#service-cards"),
      el("p.note#service-note"),
      el("section", {}, el("h2", { text: "Consumers" }), el("div#consumers")),
      el("section", {}, el("h2", { text: "Pending entries (most delivered first: the next to be dead-lettered)" }), el("div#pending")),
      el("section#dead", {}, el("h2#dead-title"),
        READ_ONLY ? null : el("div.toolbar", {},
          el("button.replay-selected", { text: "replay selected", onclick: () => selected.size && act("replay", [...selected]) }),
          el("button.danger.drop-selected", { text: "drop selected", onclick: () => selected.size && act("drop", [...selected]) }),
          el("button.replay-all", { text: "replay all", onclick: () => act("replay", "all") }),
          el("button.danger.drop-all", { text: "drop all", onclick: () => act("drop", "all") }),
          el("span#dead-note")),
        el("div#dead-letters")),
      READ_ONLY ? null : callForm(d.methods),
      d.methods ? el("section#methods", {}, el("h2", { text: "Methods (from --docs)" }),
        el("table", {}, el("tbody", {}, d.methods.map((m) => el("tr", {},
          el("td", {}, el("code", { text: `${d.service}.${m.name}` })),
          el("td", { text: m.notification ? "notification" : "request" }),
          el("td", { text: m.description || "" })))))) : null);
    app.replaceChildren(page);
  }
  document.getElementById("service-cards").replaceChildren(
    el("div.card", {}, el("div.v", { text: fmtInt(d.length) }), el("div.k", { text: "stream length" })),
    el("div.card", {}, el("div.v", { text: fmtInt(d.pending_total) }), el("div.k", { text: "pending" })),
    el("div.card", {}, el("div.v", { text: fmtInt(d.consumers.filter((c) => c.alive).length) }), el("div.k", { text: "consumers alive" })),
    el("div.card", {}, el("div.v#dead-count", { text: fmtInt(d.dead_total) }), el("div.k", { text: "dead letters" })));
  document.getElementById("service-note").textContent = d.note || "";
  document.getElementById("consumers").replaceChildren(d.consumers.length
    ? el("table#consumer-table", {},
        heads(["consumer", "group", "#pending", "#idle", "#last delivery", "state"]),
        el("tbody", {}, d.consumers.map((c) => el("tr", {},
          el("td", {}, el("code", { text: c.name })), el("td", { text: c.group }),
          el("td.num", { text: fmtInt(c.pending) }), el("td.num", { text: fmtAge(c.idle_ms) }),
          el("td.num", { text: c.last_delivery_ms === null || c.last_delivery_ms === undefined ? "–" : `${fmtAge(c.last_delivery_ms)} ago` }),
          el("td" + (c.alive ? ".ok" : ".bad"), { text: c.alive ? "alive" : "dead" })))))
    : el("p.empty", { text: d.stream.includes("_cmds_")
        ? "No server of this service answered the status request."
        : "No consumers yet: no server has received an entry of this stream (Redis < 7.2 lists a consumer only then)." }));
  document.getElementById("pending").replaceChildren(d.pending.length
    ? el("table#pending-table", {},
        heads(["entry", "consumer", "#deliveries", "#since last delivery"]),
        el("tbody", {}, d.pending.map((p) => el("tr", {},
          el("td", {}, el("code", { text: p.id })), el("td", {}, el("code", { text: p.consumer })),
          el("td.num" + (p.deliveries > 1 ? ".warn" : ""), { text: p.deliveries }), el("td.num", { text: fmtAge(p.idle_ms) })))))
    : el("p.empty", { text: "Nothing pending." }));
  if (d.dead_letters !== null) {
    document.getElementById("dead-title").textContent =
      `Dead letters (${fmtInt(d.dead_total)}${d.dead_total > d.dead_letters.length ? `, newest ${d.dead_letters.length} shown` : ""})`;
  }
  // null: unchanged since the previous event of the stream
  const ids = d.dead_letters === null ? shownDead : d.dead_letters.map((x) => x.id).join(",");
  if (ids !== shownDead) {
    shownDead = ids;
    for (const id of [...selected]) if (!d.dead_letters.some((x) => x.id === id)) selected.delete(id);
    document.getElementById("dead-letters").replaceChildren(d.dead_letters.length
      ? el("table#dead-table", {},
          heads(["", "id", "reason", "#deliveries", "", ""]),
          el("tbody", {}, d.dead_letters.map(deadLetterRow)))
      : el("p.empty", { text: "No dead letters." }));
  }
}

async function loadService() {
  try {
    const res = await fetch(`/api/services/${encodeURIComponent(serviceName)}`);
    const d = await res.json();
    if (!res.ok) throw new Error(d.error || `HTTP ${res.status}`);
    renderService(d);
    setStatus("live", "live");
  } catch (e) {
    setStatus(`error: ${e.message}`, "down");
  }
}

// ---------------------------------------------------------------- start
function start() {
  document.getElementById("mode").textContent = READ_ONLY ? "read-only" : "";
  const m = location.pathname.match(/^\/services\/([^/]+)$/);
  if (m) {
    serviceName = decodeURIComponent(m[1]);
    document.title = `clamator · ${serviceName}`;
    const live = new EventSource(`/api/services/${encodeURIComponent(serviceName)}/events`);
    live.addEventListener("service", (e) => { renderService(JSON.parse(e.data)); setStatus("live", "live"); });
    live.addEventListener("failure", (e) => setStatus(e.data, "down"));
    live.onerror = () => setStatus("disconnected (retrying)", "down");
    return;
  }
  const events = new EventSource("/api/events");
  events.addEventListener("overview", (e) => {
    lastOverview = JSON.parse(e.data);
    renderOverview(lastOverview);
    const broker = lastOverview.broker === "nats" ? "NATS" : "Redis";
    setStatus(lastOverview.error ? `${broker} unreachable` : "live", lastOverview.error ? "down" : "live");
  });
  events.onerror = () => setStatus("disconnected (retrying)", "down");
}

start();
