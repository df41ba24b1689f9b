// Hephaestus dashboard: keeps the server-rendered page current from /api/events (SSE).
// Plain DOM, textContent only (objectives come from a model: never parsed as HTML).
"use strict";
(function () {
  const OUTCOMES = ["succeeded", "rejected", "failed", "aborted"];
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  let seen = null; // correlation ids already on the page

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clock(seconds) {
    const d = new Date(seconds * 1000);
    return d.toLocaleString(undefined, { hour12: false });
  }

  function span(seconds) {
    const s = Math.floor(seconds);
    if (s < 120) return s + " s";
    if (s < 7200) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function renderHeader(doc) {
    const status = $("status");
    status.textContent = doc.status;
    status.className = "pill " + doc.status;
    $("version").textContent = doc.version;
    $("uptime").textContent = span(doc.uptime_seconds);
    $("cycles-run").textContent = doc.cycles_run;
    $("queue-depth").textContent = doc.queue_depth;
    $("consecutive-failures").textContent = doc.consecutive_failures;
    $("in-cycle").textContent = doc.in_cycle ? "yes" : "no";
    $("provider").textContent = doc.provider || "-";
    const error = $("error");
    error.hidden = !doc.error;
    error.textContent = doc.error || "";
  }

  function renderKpis(doc) {
    const box = $("kpis");
    box.replaceChildren(...doc.kpis.map((k) => {
      const card = el("div", { class: "kpi " + k.state, "data-kpi": k.key, title: k.basis });
      card.append(el("div", { class: "kpi-title" }, k.title));
      card.append(el("div", { class: "kpi-value" }, k.display));
      const target = el("div", { class: "kpi-target" }, "target " + k.target_display + " · ");
      target.append(el("span", { class: "kpi-state" }, k.state.replace("_", " ")));
      card.append(target);
      if (k.state === "no_data") card.append(el("div", { class: "kpi-basis" }, k.basis));
      return card;
    }));
  }

  function renderOutcomes(doc) {
    for (const outcome of OUTCOMES) {
      const cell = document.querySelector(`#outcomes tr[data-outcome="${outcome}"] td.num`);
      if (cell) cell.textContent = doc.outcomes[outcome] || 0;
    }
  }

  function renderBreakers(doc) {
    const body = $("breakers").tBodies[0];
    const names = Object.keys(doc.breakers);
    if (!names.length) {
      body.replaceChildren(el("tr", {}, ""));
      body.rows[0].append(el("td", { colspan: "2" }, "no breakers"));
      return;
    }
    body.replaceChildren(...names.map((name) => {
      const row = el("tr");
      row.append(el("td", {}, name));
      const cell = el("td", { class: "num" });
      cell.append(el("span", { class: "pill " + doc.breakers[name] }, doc.breakers[name]));
      row.append(cell);
      return row;
    }));
  }

  function renderChart(doc) {
    const svg = $("chart");
    const done = doc.cycles.filter((c) => c.duration_s !== null).reverse();
    const longest = Math.max(1e-9, ...done.map((c) => c.duration_s));
    const step = 600 / Math.max(done.length, 1);
    svg.replaceChildren(...done.map((c, n) => {
      const h = Math.max(1, (c.duration_s / longest) * 116);
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("class", c.outcome);
      rect.setAttribute("x", n * step + 1);
      rect.setAttribute("y", 120 - h);
      rect.setAttribute("width", Math.max(step - 2, 1));
      rect.setAttribute("height", h);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `cycle ${c.cycle_number}: ${c.outcome} in ${c.duration_s.toFixed(2)}s`;
      rect.append(title);
      return rect;
    }));
  }

  function cycleRow(c, fresh) {
    const row = el("tr", { "data-correlation-id": c.correlation_id });
    if (fresh) row.classList.add("new");
    row.append(el("td", {}, c.cycle_number));
    row.append(el("td", {}, clock(c.started_at)));
    const outcome = el("td");
    outcome.append(el("span", { class: "dot " + c.outcome }), c.outcome);
    row.append(outcome);
    row.append(el("td", {}, c.reason));
    row.append(el("td", { class: "num" }, c.duration_s === null ? "-" : c.duration_s.toFixed(2) + " s"));
    row.append(el("td", { class: "objective" }, c.objective));
    const commit = el("td");
    commit.append(el("code", {}, c.commit || "-"));
    row.append(commit);
    const link = el("a", { href: "/cycles/" + encodeURIComponent(c.correlation_id) });
    link.append(el("code", {}, c.correlation_id));
    const id = el("td");
    id.append(link);
    row.append(id);
    return row;
  }

  function renderCycles(doc) {
    const body = $("cycles").tBodies[0];
    const known = seen || new Set(doc.cycles.map((c) => c.correlation_id));
    body.replaceChildren(...doc.cycles.map((c) => cycleRow(c, !known.has(c.correlation_id))));
    if (!doc.cycles.length) {
      const empty = el("tr", { class: "empty" });
      empty.append(el("td", { colspan: "8" }, "no cycles recorded yet"));
      body.append(empty);
    }
    seen = new Set(doc.cycles.map((c) => c.correlation_id));
  }

  function render(doc) {
    renderHeader(doc);
    renderKpis(doc);
    renderOutcomes(doc);
    renderBreakers(doc);
    renderChart(doc);
    renderCycles(doc);
    const live = $("live");
    live.dataset.state = "live";
    live.textContent = "live · updated " + new Date(doc.generated_at * 1000).toLocaleTimeString(undefined, { hour12: false });
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }

  function poll() {
    fetch("/api/dashboard", { cache: "no-store" })
      .then((r) => r.json())
      .then(render)
      .catch(() => { $("live").dataset.state = "reconnecting"; })
      .finally(() => setTimeout(poll, 5000));
  }

  for (const node of document.querySelectorAll("time[data-ts]")) {
    node.textContent = clock(Number(node.dataset.ts));
  }
  if (!("EventSource" in window)) { poll(); return; }
  const source = new EventSource("/api/events");
  source.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    const live = $("live");
    live.dataset.state = "reconnecting";
    live.textContent = "reconnecting…";
  });
})();
