"""The one page ``ledgerlink ui`` serves: static HTML, CSS and plain JavaScript, nothing fetched from
elsewhere (the operator's machine may have no internet, and the Content-Security-Policy allows only this
server). Kept as a Python string so it ships in every install of the package, wheel or editable.

The script reads the JSON API (:mod:`ledgerlink.cli.ui`) and builds the page with ``textContent`` only,
never ``innerHTML``: a failure reason is a vendor's text and must not become markup. When a view has
rendered, ``<body data-state>`` is ``ready`` (``error`` when the API answered with an error), which is
what the browser test waits for.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Final

_TEMPLATE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="ledgerlink-token" content="__TOKEN__">
<title>LedgerLink sync health</title>
<style nonce="__NONCE__">
  :root { --ok: #1b7f3b; --bad: #b3261e; --warn: #a05a00; --muted: #5f6368; --line: #dadce0; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #202124; }
  header { display: flex; gap: 24px; align-items: center; padding: 12px 24px; background: #f1f3f4;
           border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  nav a { margin-right: 14px; color: #1a56db; text-decoration: none; padding: 4px 0; }
  nav a.current { font-weight: 600; border-bottom: 2px solid #1a56db; }
  main { padding: 8px 24px 32px; }
  h2 { font-size: 16px; margin: 22px 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .02em; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
  .state-healthy { background: #e6f4ea; color: var(--ok); }
  .state-failing, .state-unreadable { background: #fce8e6; color: var(--bad); }
  .state-idle { background: #f1f3f4; color: var(--muted); }
  .outcome-failed, .outcome-dead_lettered { color: var(--bad); font-weight: 600; }
  .outcome-written { color: var(--ok); }
  .group { border: 1px solid var(--line); border-left: 4px solid var(--bad); border-radius: 4px;
           padding: 8px 12px; margin: 8px 0; }
  .group h3 { margin: 0 0 4px; font-size: 15px; }
  .fix { background: #fef7e0; padding: 4px 8px; border-radius: 4px; margin-top: 4px; }
  .muted { color: var(--muted); }
  .problem { color: var(--bad); }
  .dlq { margin: 10px 0 18px; }
  .dlq h3 { font-size: 15px; margin: 0 0 6px; display: flex; gap: 12px; align-items: center; }
  button { font: inherit; padding: 4px 12px; border: 1px solid #1a56db; background: #1a56db; color: white;
           border-radius: 4px; cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  form { display: flex; gap: 8px; align-items: center; margin: 8px 0 12px; }
  input, select { font: inherit; padding: 3px 6px; }
  svg text { font: 11px system-ui, sans-serif; fill: #3c4043; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
  .mono { word-break: break-all; }
  td.time { white-space: nowrap; }
  td.id { max-width: 200px; }
</style>
</head>
<body data-state="loading">
<header>
  <h1>LedgerLink sync health</h1>
  <nav id="tabs"></nav>
  <label>connection <select id="connection"></select></label>
  <span id="where" class="muted"></span>
</header>
<main id="main"><p class="muted">Loading…</p></main>
<script type="application/json" id="connections">__CONNECTIONS__</script>
<script nonce="__NONCE__">
"use strict";
const TOKEN = document.querySelector('meta[name="ledgerlink-token"]').content;
const CONNECTIONS = JSON.parse(document.getElementById("connections").textContent);
const params = new URLSearchParams(location.search);
const VIEWS = [["health", "Health"], ["failures", "Failures & dead letters"], ["trace", "Trace"]];
const view = VIEWS.some(([name]) => name === params.get("view")) ? params.get("view") : "health";
const connection = CONNECTIONS.includes(params.get("connection")) ? params.get("connection") : CONNECTIONS[0];
const main = document.getElementById("main");

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function svg(tag, attributes, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
function url(changes) {
  const next = new URLSearchParams({view, connection});
  for (const [name, value] of Object.entries(changes)) next.set(name, value);
  return "?" + next.toString();
}
async function api(path, options) {
  const response = await fetch(path, options);
  const document = await response.json();
  if (!response.ok) throw new Error(document.error || response.statusText);
  return document;
}
function table(headers, rows, rowAttributes) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map(([label, cls]) => el("th", {class: cls}, label)))),
    el("tbody", {}, rows.map((cells, index) => el("tr", rowAttributes ? rowAttributes(index) : {},
      cells.map((cell, column) => el("td", {class: headers[column][1]}, cell))))));
}
function dash(value) { return value === null || value === undefined || value === "" ? "-" : value; }
function when(at) { return at ? at.replace("T", " ").replace(/(\\.\\d+)?(Z|\\+00:00)$/, " UTC") : "-"; }
function ready() { document.body.dataset.state = "ready"; }
function failed(error) {
  main.append(el("p", {class: "problem", id: "error"}, "Could not read: " + error.message));
  document.body.dataset.state = "error";
}

function header() {
  const tabs = document.getElementById("tabs");
  for (const [name, label] of VIEWS) {
    tabs.append(el("a", {href: url({view: name}), class: name === view ? "current" : null, id: "tab-" + name}, label));
  }
  const choose = document.getElementById("connection");
  for (const name of CONNECTIONS) choose.append(el("option", {value: name}, name));
  choose.value = connection;
  choose.addEventListener("change", () => { location.search = url({connection: choose.value}); });
}

// ---- health: every connection, the queues, the plot
async function renderHealth() {
  const [status, series] = await Promise.all([
    api("/api/status"), api("/api/series?connection=" + encodeURIComponent(connection))]);
  document.getElementById("where").textContent = status.where;
  main.replaceChildren(el("h2", {}, "Connections"));
  const numbers = [["connection"], ["state"], ["records", "num"], ["written", "num"], ["failing records", "num"],
                   ["waiting retries", "num"], ["dead-lettered", "num"], ["last success"], ["last activity"]];
  main.append(table(numbers, status.connections.map((c) => [
      el("a", {href: url({connection: c.connection})}, c.connection),
      el("span", {class: "badge state-" + c.state}, c.state),
      c.records, c.written, c.failing_records, c.waiting_retries, c.dead_lettered_records,
      when(c.last_success_at), c.problem ? el("span", {class: "problem"}, c.problem) : when(c.last_at)]),
    (index) => ({id: "health-" + status.connections[index].connection,
                 "data-state": status.connections[index].state})));
  main.append(el("h2", {}, "Queues"));
  main.append(status.queues.length ? table(
    [["queue"], ["waiting", "num"], ["in flight", "num"], ["max receives", "num"], ["dead-letter queue"], ["dead-lettered", "num"]],
    status.queues.map((q) => [q.name, q.visible, q.in_flight, dash(q.max_receive_count), dash(q.dlq_name),
                              q.dlq_name ? q.dlq_visible : "-"])) : el("p", {class: "muted"}, "No queues found."));
  for (const problem of status.problems) main.append(el("p", {class: "problem"}, problem));
  main.append(el("h2", {}, `Throughput, latency and failures: ${connection}`));
  main.append(plot(series));
}

function plot(series) {
  const buckets = series.buckets;
  if (!buckets.length) return el("p", {class: "muted", id: "plot-empty"}, "No history yet.");
  const width = 1180, height = 300, left = 56, right = 64, top = 28, bottom = 44;
  const inner = width - left - right, tall = height - top - bottom;
  // An even top, so the middle tick is a whole number of attempts too.
  const busiest = Math.max(1, ...buckets.map((b) => b.throughput + b.failures));
  const counts = busiest === 1 ? 1 : busiest + (busiest % 2);
  const latencies = buckets.flatMap((b) => [b.latency_p95_ms, b.latency_p50_ms]).filter((v) => v !== null);
  const slowest = Math.max(1, ...latencies);
  const step = inner / buckets.length, barWidth = Math.max(1, step * 0.7);
  const y = (value) => top + tall - (value / counts) * tall;
  const yLatency = (value) => top + tall - (value / slowest) * tall;
  const chart = svg("svg", {width, height, viewBox: `0 0 ${width} ${height}`, id: "plot", role: "img",
                            "aria-label": "throughput, latency and failures over time"});
  chart.append(svg("line", {x1: left, y1: top + tall, x2: left + inner, y2: top + tall, stroke: "#9aa0a6"}));
  for (const fraction of [0, 0.5, 1]) {
    const at = top + tall - fraction * tall;
    chart.append(svg("line", {x1: left, y1: at, x2: left + inner, y2: at, stroke: "#eceff1"}));
    chart.append(svg("text", {x: left - 6, y: at + 4, "text-anchor": "end"}, Math.round(fraction * counts)));
    chart.append(svg("text", {x: left + inner + 6, y: at + 4}, Math.round(fraction * slowest) + " ms"));
  }
  chart.append(svg("text", {x: left, y: 16}, `attempts per ${series.bucket_seconds / 60} min`));
  chart.append(svg("text", {x: left + inner, y: 16, "text-anchor": "end"}, "latency (queued → settled)"));
  const p95 = [], p50 = [];
  buckets.forEach((bucket, index) => {
    const x = left + index * step + (step - barWidth) / 2;
    if (bucket.throughput) chart.append(svg("rect", {x, y: y(bucket.throughput), width: barWidth,
      height: top + tall - y(bucket.throughput), fill: "#8ab4f8", class: "bar-throughput"},
      svg("title", {}, `${bucket.start}: ${bucket.throughput} settled`)));
    if (bucket.failures) chart.append(svg("rect", {x, y: y(bucket.throughput + bucket.failures), width: barWidth,
      height: y(bucket.throughput) - y(bucket.throughput + bucket.failures), fill: "#d93025", class: "bar-failures"},
      svg("title", {}, `${bucket.start}: ${bucket.failures} failed`)));
    const middle = left + index * step + step / 2;
    if (bucket.latency_p95_ms !== null) p95.push(`${middle},${yLatency(bucket.latency_p95_ms)}`);
    if (bucket.latency_p50_ms !== null) p50.push(`${middle},${yLatency(bucket.latency_p50_ms)}`);
  });
  if (p95.length) chart.append(svg("polyline", {points: p95.join(" "), fill: "none", stroke: "#e37400", "stroke-width": 2, class: "line-p95"}));
  if (p50.length) chart.append(svg("polyline", {points: p50.join(" "), fill: "none", stroke: "#e37400", "stroke-width": 1.5, "stroke-dasharray": "4 3", class: "line-p50"}));
  const every = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((bucket, index) => {
    if (index % every) return;
    chart.append(svg("text", {x: left + index * step + step / 2, y: top + tall + 16, "text-anchor": "middle"},
                     bucket.start.slice(11, 16)));
  });
  chart.append(svg("text", {x: left, y: height - 8}, `${buckets[0].start.slice(0, 10)} (UTC)`));
  const legend = [["#8ab4f8", "settled"], ["#d93025", "failed / dead-lettered"], ["#e37400", "latency p95 (dashed: p50)"]];
  legend.forEach(([color, label], index) => {
    const x = left + 220 + index * 190;
    chart.append(svg("rect", {x, y: height - 18, width: 12, height: 12, fill: color}));
    chart.append(svg("text", {x: x + 16, y: height - 8}, label));
  });
  return chart;
}

// ---- failures: grouped by reason with their fix, and the dead-letter queues
async function renderFailures() {
  const [status, dlq] = await Promise.all([api("/api/status"), api("/api/dlq")]);
  document.getElementById("where").textContent = status.where;
  const health = status.connections.find((c) => c.connection === connection);
  main.replaceChildren(el("h2", {}, `Failures by reason: ${connection}`));
  if (health && health.problem) main.append(el("p", {class: "problem"}, health.problem));
  if (!health || !health.failures.length) {
    main.append(el("p", {class: "muted", id: "no-failures"}, `No failures among the last ${health ? health.attempts : 0} attempts.`));
  }
  for (const group of (health ? health.failures : [])) {
    main.append(el("div", {class: "group", id: "failure-" + group.category},
      el("h3", {}, `${group.category}: ${group.records} attempt${group.records === 1 ? "" : "s"}`,
         el("span", {class: "muted"}, ` (${group.flows.join(", ")})`)),
      el("div", {}, "latest reason: ", el("span", {class: "reason"}, group.latest_reason)),
      el("div", {class: "fix"}, "fix: " + group.fix)));
  }
  main.append(el("p", {class: "muted"}, "What each category needs: docs/status.md#reason-categories"));
  main.append(el("h2", {}, "Dead-letter queues"));
  const list = el("div", {id: "dead-letters"});
  main.append(list);
  showDeadLetters(list, dlq);
}

function showDeadLetters(list, dlq) {
  list.replaceChildren();
  for (const problem of dlq.problems) list.append(el("p", {class: "problem"}, problem));
  if (!dlq.queues.length) list.append(el("p", {class: "muted"}, "No dead-letter queues found."));
  for (const queue of dlq.queues) {
    const button = el("button", {id: "replay-" + queue.dlq, "data-dlq": queue.dlq}, "Replay");
    if (!queue.depth) button.disabled = true;
    const result = el("span", {class: "muted", id: "result-" + queue.dlq});
    const box = el("div", {class: "dlq", id: "dlq-" + queue.dlq, "data-depth": queue.depth},
      el("h3", {}, el("span", {class: "mono"}, queue.dlq), el("span", {class: "muted"}, `${queue.depth} waiting → ${queue.queue}`), button, result));
    if (queue.problem) box.append(el("p", {class: "problem"}, queue.problem));
    if (queue.messages.length) {
      box.append(table([["message", "id"], ["kind"], ["subject"], ["reason"], ["receives", "num"], ["failed at", "time"], ["correlation id", "id"]],
        queue.messages.map((m) => [el("span", {class: "mono"}, m.message_id), m.kind, m.subject, m.reason,
                                   dash(m.receive_count), when(m.failed_at), el("span", {class: "mono"}, dash(m.correlation_id))])));
    }
    button.addEventListener("click", async () => {
      button.disabled = true;
      result.textContent = "replaying…";
      document.body.dataset.state = "busy";
      try {
        const report = await api("/api/dlq/replay", {method: "POST",
          headers: {"Content-Type": "application/json", "X-LedgerLink-Token": TOKEN},
          body: JSON.stringify({queue: queue.dlq})});
        showDeadLetters(list, await api("/api/dlq"));
        document.getElementById("result-" + queue.dlq).textContent =
          `replayed to ${report.source_queue}: moved ${report.moved}, skipped ${report.skipped}, failed ${report.failed}`;
        ready();
      } catch (error) {
        result.textContent = "replay failed: " + error.message;
        result.className = "problem";
        button.disabled = false;
        document.body.dataset.state = "error";
      }
    });
    list.append(box);
  }
}

// ---- trace: every hop of a record
async function renderTrace() {
  const kind = params.get("kind") === "deal" ? "deal" : "invoice";
  const reference = params.get("ref") || "";
  const form = el("form", {id: "trace-form"},
    el("select", {name: "kind", id: "trace-kind"}, el("option", {value: "invoice"}, "invoice"), el("option", {value: "deal"}, "deal")),
    el("input", {name: "ref", id: "trace-ref", placeholder: "DocNumber or Id / deal id", value: reference}),
    el("input", {type: "hidden", name: "view", value: "trace"}),
    el("input", {type: "hidden", name: "connection", value: connection}),
    el("button", {type: "submit"}, "Trace"));
  form.querySelector("select").value = kind;
  main.replaceChildren(el("h2", {}, `Trace: ${connection}`), form);
  if (!reference) { main.append(el("p", {class: "muted"}, "Name an invoice (DocNumber or Id) or a deal.")); return; }
  const trace = await api(`/api/trace?connection=${encodeURIComponent(connection)}&kind=${kind}&ref=${encodeURIComponent(reference)}`);
  if (!trace.hops.length) {
    main.append(el("p", {class: "muted", id: "no-hops"}, `No history for ${kind} ${reference} (rows expire after LEDGERLINK_HISTORY_TTL_DAYS).`));
    return;
  }
  main.append(el("p", {}, `${kind} ${reference}: ${trace.hops.length} hops, oldest first`));
  const qbo = (h) => [h.estimate_number || h.estimate_id ? `estimate ${dash(h.estimate_number)}` : null,
                      h.invoice_number || h.invoice_id ? `invoice ${dash(h.invoice_number)}` : null].filter(Boolean).join("; ") || "-";
  main.append(table(
    [["#", "num"], ["time", "time"], ["flow"], ["record"], ["outcome"], ["deal (stage)"], ["outlook event", "id"], ["teams meeting", "id"], ["qbo"], ["next attempt", "time"], ["correlation id", "id"], ["reason"]],
    trace.hops.map((h, index) => [index + 1, when(h.at), h.flow, h.source,
      el("span", {class: "outcome-" + h.outcome}, h.outcome.replace("_", "-") + (h.category ? ` [${h.category}]` : "")),
      h.deal_id ? `${h.deal_id}${h.deal_stage ? " (" + h.deal_stage + ")" : ""}` : "-",
      el("span", {class: "mono"}, dash(h.outlook_event_id)), el("span", {class: "mono"}, dash(h.teams_meeting_id)),
      qbo(h), when(h.next_attempt_at), el("span", {class: "mono"}, dash(h.correlation_id)), dash(h.reason)]),
    (index) => ({class: "hop", "data-flow": trace.hops[index].flow})));
}

header();
const render = {health: renderHealth, failures: renderFailures, trace: renderTrace}[view];
render().then(ready, failed);
</script>
</body>
</html>
"""


def render_page(*, token: str, nonce: str, connections: Sequence[str]) -> str:
    """The page with this process's token, this response's script nonce and the connections to offer."""
    # "</" cannot end the JSON's script element early: connection names are the operator's, still.
    names = json.dumps(list(connections)).replace("</", "<\\/")
    return (
        _TEMPLATE.replace("__TOKEN__", html.escape(token, quote=True))
        .replace("__NONCE__", html.escape(nonce, quote=True))
        .replace("__CONNECTIONS__", names)
    )
