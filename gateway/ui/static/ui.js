// Meshgate dashboard: polls /ui/state.json every second and redraws.
// Every value goes in through textContent: nothing from the mesh is parsed as HTML.
"use strict";
(() => {
  const STATE_URL = "/ui/state.json";
  const KEY = "meshgate.ui.credential";
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const ms = (v) => (v === null || v === undefined ? "—" : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);
  const rate = (v) => (v === null || v === undefined ? "—" : v.toFixed(v < 10 ? 2 : 1));
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });

  function hue(text) {
    let h = 0;
    for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) % 360;
    return h;
  }

  function badge(state) {
    return el("span", { class: `badge ${state}`, "data-badge": state }, state);
  }

  function tile(label, value, alert) {
    return el("div", { class: alert ? "tile alert" : "tile" },
      el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  }

  function renderTiles(state) {
    const s = state.summary;
    const total = state.upstreams.reduce((sum, u) => sum + (u.rate || 0), 0);
    $("tiles").replaceChildren(
      tile("agents", s.agents),
      tile("tool servers", s.tool_servers),
      tile("healthy instances", `${s.healthy} / ${s.instances}`, s.healthy < s.instances),
      tile("tools", s.tools),
      tile("requests / s", rate(total)),
    );
  }

  function renderService(service) {
    const down = service.healthy === 0;
    const degraded = !down && service.healthy < service.instances.length;
    const card = el("article", {
      class: `card${down ? " down" : degraded ? " degraded" : ""}`,
      "data-service": service.name,
    });
    const kind = service.kind === "a2a-agent" ? "agent" : "tool server";
    card.append(el("div", { class: "card-head" },
      el("span", { class: "card-title" }, service.name),
      el("span", { class: "kind" }, `${kind} · ${service.healthy}/${service.instances.length} healthy`)));
    if (service.description) card.append(el("div", { class: "card-desc" }, service.description));
    card.append(el("div", { class: "sub-h" }, "instances"));
    card.append(el("ul", { class: "instances" }, service.instances.map((i) =>
      el("li", { "data-instance": i.id, "data-state": i.state, "data-url": i.url },
        badge(i.state),
        el("div", { class: "who" }, el("div", { class: "id" }, i.id), el("div", { class: "url mono", title: i.url }, i.url)),
        el("span", { class: "count", title: "requests this gateway sent to it" },
          i.in_flight ? `${i.requests} req · ${i.in_flight} now` : `${i.requests} req`)))));
    if (service.skills.length) {
      card.append(el("div", { class: "sub-h" }, `skills (${service.skills.length})`));
      card.append(el("div", { class: "chips" }, service.skills.map((s) =>
        el("span", { class: "chip", title: s.description || s.id }, s.name))));
    }
    if (service.tools.length) {
      card.append(el("div", { class: "sub-h" }, `tools (${service.tools.length})`));
      card.append(el("div", { class: "chips" }, service.tools.map((t) => el("span", { class: "chip mono" }, t))));
    }
    return card;
  }

  function rows(tableId, items, columns, empty) {
    const body = $(tableId).tBodies[0];
    if (!items.length) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: columns }, empty)));
      return;
    }
    body.replaceChildren(...items);
  }

  // Latency cells: muted, with a tooltip, when they are lifetime figures (an idle window).
  function lat(row, value) {
    const recent = row.latency_over !== "lifetime";
    return el("td", { class: recent ? "num" : "num muted", title: recent ? null : "since the gateway started (nothing in the window)" }, ms(value));
  }

  function renderTraffic(state) {
    $("window").textContent = state.window_seconds ? `(last ${Math.round(state.window_seconds)} s)` : "";
    rows("upstreams", state.upstreams.map((u) => el("tr", { "data-service": u.service },
      el("td", {}, u.service), el("td", { class: "num" }, rate(u.rate)), lat(u, u.p50_ms), lat(u, u.p99_ms), lat(u, u.mean_ms),
      el("td", { class: "num" }, u.total), el("td", { class: u.errors ? "num status-bad" : "num" }, u.errors))),
      7, "no traffic yet");
    rows("routes", state.routes.map((r) => el("tr", {},
      el("td", { class: "mono" }, r.route), el("td", { class: "num" }, rate(r.rate)), lat(r, r.p50_ms), lat(r, r.p99_ms),
      el("td", { class: "num" }, r.in_flight),
      el("td", { class: "num" }, r.total), el("td", { class: r.errors ? "num status-bad" : "num" }, r.errors))),
      7, "no requests yet");
  }

  function renderTraces(state) {
    rows("traces", state.traces.map((t) => {
      const trace = t.trace_id
        ? el("span", { class: "trace mono", title: t.trace_id }, el("span", { class: "dot" }), t.trace_id.slice(0, 12))
        : el("span", { class: "muted" }, "—");
      if (t.trace_id) trace.firstChild.style.background = `hsl(${hue(t.trace_id)} 70% 50%)`;
      return el("tr", { "data-trace": t.trace_id || "" },
        el("td", { class: "mono" }, clock(t.time)), el("td", {}, t.service), el("td", { class: "mono" }, t.instance),
        el("td", { class: t.status >= 500 ? "num status-bad" : "num status-ok" }, t.status),
        el("td", { class: "num" }, ms(t.duration_ms)), el("td", {}, trace));
    }), 6, "no exchanges yet");
  }

  function render(state) {
    renderTiles(state);
    $("services").replaceChildren(...state.services.map(renderService));
    $("services-note").textContent = state.services.length ? "" : "(nothing registered yet)";
    renderTraffic(state);
    renderTraces(state);
    const g = state.gateway;
    const status = $("status");
    status.className = `pill ${g.stale ? "pill-stale" : "pill-live"}`;
    status.textContent = g.stale ? `registry unreachable ${Math.round(g.staleness_seconds)} s` : "live";
    $("updated").textContent = `routes #${g.table_index} · ${clock(state.now)}`;
  }

  function offline(text) {
    const status = $("status");
    status.className = "pill pill-down";
    status.textContent = text;
  }

  function askForKey(message) {
    const dialog = $("login");
    $("login-error").textContent = message || "";
    if (!dialog.open) dialog.showModal();
  }

  async function poll() {
    const headers = { accept: "application/json" };
    const credential = sessionStorage.getItem(KEY);
    if (credential) headers.authorization = `Bearer ${credential}`;
    try {
      const response = await fetch(STATE_URL, { headers, cache: "no-store" });
      if (response.status === 401) {
        sessionStorage.removeItem(KEY);
        offline("sign-in needed");
        askForKey(credential ? "That key was refused." : "");
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
    } catch (error) {
      offline("gateway unreachable");
    }
    setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", () => {
      const key = $("login-key").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY, key);
      $("login-key").value = "";
      poll();
    });
    poll();
  });
})();
