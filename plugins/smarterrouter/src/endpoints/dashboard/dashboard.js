"use strict";
// The SmarterRouter dashboard: polls the admin JSON endpoints and draws them. No library; the
// charts are SVG built here. Data is only ever put in the page as text (textContent), never as
// markup, so a model or node name cannot inject anything.
(function () {
  const KEY = "smarterrouter.adminKey";
  const POLL_MS = 2000;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  let paused = false;
  let timer = null;
  let inFlight = false;
  let loggedOut = false;

  class AuthNeeded extends Error {}

  function adminKey() {
    return sessionStorage.getItem(KEY) || "";
  }

  async function getJSON(path, acceptStatus) {
    const headers = { Accept: "application/json" };
    const key = adminKey();
    if (key) headers.Authorization = "Bearer " + key;
    const response = await fetch(path, { headers, cache: "no-store", credentials: "omit" });
    if (response.status === 401) throw new AuthNeeded("the admin key is missing or wrong");
    if (!response.ok && response.status !== acceptStatus) {
      let why = response.statusText;
      try {
        why = (await response.json()).error.message;
      } catch (_) { /* not JSON: keep the status text */ }
      throw new Error(path + ": " + response.status + " " + why);
    }
    return response.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  const timeOf = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const fixed = (x, digits) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
  const shortNode = (url) => String(url).replace(/^https?:\/\//, "");

  // A time chart: series of [unix_ms, value] points (null breaks a line), limits as dashed lines.
  function lineChart(container, legend, { series, limits = [], from, to, unit = "", yMax, label }) {
    // Drawn at the container's own width, so text keeps its size on a phone and a wide screen.
    const width = Math.max(280, Math.round(container.clientWidth || 640));
    const height = 200, left = 48, right = 8, top = 8, bottom = 22;
    const values = series.flatMap((s) => s.points.map((p) => p[1])).concat(limits.map((l) => l.value));
    const finite = values.filter((v) => v !== null && Number.isFinite(v));
    let max = yMax !== undefined ? yMax : Math.max(1, ...finite);
    if (yMax === undefined) max = niceCeil(max * 1.1);
    const x = (t) => left + ((t - from) / Math.max(1, to - from)) * (width - left - right);
    const y = (v) => top + (1 - v / max) * (height - top - bottom);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
    const title = svg("title");
    title.textContent = label;
    chart.append(title);
    for (const f of [0, 0.5, 1]) {
      const v = max * f;
      chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
      const text = svg("text", { class: "axis", x: left - 6, y: y(v) + 4, "text-anchor": "end" });
      text.textContent = formatAxis(v) + unit;
      chart.append(text);
    }
    for (const [t, anchor] of [[from, "start"], [(from + to) / 2, "middle"], [to, "end"]]) {
      const text = svg("text", { class: "axis", x: x(t), y: height - 6, "text-anchor": anchor });
      text.textContent = t === to ? "now" : "-" + Math.round((to - t) / 60000) + " min";
      chart.append(text);
    }
    limits.forEach((limit) => {
      chart.append(svg("line", { class: "limit c" + limit.color, x1: left, x2: width - right, y1: y(limit.value), y2: y(limit.value) }));
    });
    let drawn = 0;
    series.forEach((s) => {
      let run = [];
      const flush = () => {
        if (run.length === 1) run.push([run[0][0] + 0.5, run[0][1]]);
        if (run.length > 1) {
          chart.append(svg("polyline", { class: "series c" + s.color, points: run.map((p) => p.join(",")).join(" "), "data-series": s.name }));
          drawn += 1;
        }
        run = [];
      };
      s.points.forEach(([t, v]) => {
        if (v === null || !Number.isFinite(v) || t < from) flush();
        else run.push([x(Math.min(t, to)).toFixed(1), y(Math.min(v, max)).toFixed(1)]);
      });
      flush();
    });
    if (drawn === 0) {
      const text = svg("text", { class: "empty", x: width / 2, y: height / 2, "text-anchor": "middle" });
      text.textContent = "No data in this window yet";
      chart.append(text);
    }
    container.replaceChildren(chart);
    if (legend) {
      fill(legend, series.map((s) => el("li", {}, el("span", { class: "swatch c" + s.color, "aria-hidden": "true" }), s.name + (s.latest !== undefined ? ": " + s.latest : "")))
        .concat(limits.map((l) => el("li", {}, el("span", { class: "swatch dashed c" + l.color, "aria-hidden": "true" }), l.name))));
    }
  }

  function windowName(minutes) {
    return minutes === 60 ? "hour" : minutes + " minutes";
  }

  function niceCeil(v) {
    const power = Math.pow(10, Math.floor(Math.log10(v)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= v) return step * power;
    return 10 * power;
  }

  function formatAxis(v) {
    if (v >= 100 || Number.isInteger(v)) return String(Math.round(v));
    return v.toFixed(1);
  }

  // ---- sections ----------------------------------------------------------------------------

  function drawVram(vram, now, minutes) {
    if (vram.error) {
      $("vram-summary").textContent = vram.error + " (router.vram.enabled)";
      $("vram-chart").replaceChildren();
      return;
    }
    const from = now - minutes * 60000;
    const history = vram.history || [];
    const series = [];
    const limits = [];
    let color = 0;
    (vram.nodes || []).forEach((node) => {
      const c = color++ % 8;
      series.push({
        name: shortNode(node.url) + " used",
        color: c,
        latest: node.used_gb === null ? "not read" : fixed(node.used_gb, 2) + " GB",
        points: history.map((h) => [h.timestamp * 1000, h.nodes ? h.nodes[node.url] : null]),
      });
      if (node.budget_gb !== null) limits.push({ name: shortNode(node.url) + " budget " + fixed(node.budget_gb, 1) + " GB", value: node.budget_gb, color: c });
      if (node.total_gb !== null) limits.push({ name: shortNode(node.url) + " total " + fixed(node.total_gb, 1) + " GB", value: node.total_gb, color: 7 });
    });
    (vram.gpus || []).forEach((gpu) => {
      const c = color++ % 8;
      series.push({
        name: "GPU " + gpu.index + " (" + gpu.name + ") used",
        color: c,
        latest: fixed(gpu.used_gb, 2) + " GB",
        points: history.map((h) => {
          const g = (h.gpus || []).find((x) => x.index === gpu.index);
          return [h.timestamp * 1000, g ? g.used_gb : null];
        }),
      });
      limits.push({ name: "GPU " + gpu.index + " total " + fixed(gpu.total_gb, 1) + " GB", value: gpu.total_gb, color: c });
    });
    lineChart($("vram-chart"), $("vram-legend"), { series, limits, from, to: now, unit: " GB", label: "GPU memory used per node and GPU over the last " + minutes + " minutes, in GB" });
    const budget = vram.budget || {};
    const parts = [];
    if (vram.current) parts.push(fixed(vram.current.used_gb, 2) + " of " + fixed(vram.current.total_gb, 2) + " GB used (" + vram.current.utilization_pct + "%)");
    if (budget.max_configured_gb !== null && budget.max_configured_gb !== undefined) parts.push("budget " + fixed(budget.max_configured_gb, 2) + " GB, " + fixed(budget.available_gb, 2) + " GB free in it");
    parts.push("GPU readings: " + vram.gpu_monitoring);
    $("vram-summary").textContent = parts.join(" · ") + ((vram.warnings || []).length ? " · " + vram.warnings.join("; ") : "");
    const pinned = vram.pinned_model;
    const rows = [];
    (vram.nodes || []).forEach((node) => node.models.forEach((m) => rows.push(el("tr", {},
      el("td", {}, m.name, m.name === pinned ? " " : null, m.name === pinned ? el("span", { class: "tag pinned" }, "pinned") : null),
      el("td", {}, shortNode(node.url)),
      el("td", { class: "num" }, fixed(m.vram_gb, 2) + " GB"),
      el("td", {}, m.expires_at ? new Date(m.expires_at).toLocaleString() : "–")))));
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No model loaded" + (pinned ? " (pinned: " + pinned + ")" : ""))));
    fill($("loaded").tBodies[0], rows);
    const events = (vram.events || []).slice(0, 50).map((e) => el("li", {},
      el("span", { class: "when" }, timeOf(e.timestamp * 1000)),
      el("strong", { class: e.event === "load" ? "ok" : "warn" }, e.event === "load" ? "loaded " : "unloaded "),
      e.model + " on " + shortNode(e.node) + ": " + e.reason));
    if (events.length === 0) events.push(el("li", { class: "muted" }, "None in the last " + windowName(minutes)));
    $("events").replaceChildren(...events);
  }

  function drawNodes(health) {
    fill($("nodes").tBodies[0], (health.nodes || []).map((n) => el("tr", {},
      el("td", {}, shortNode(n.url), el("span", { class: "muted" }, " " + n.kind + ", pool " + n.pool)),
      el("td", { class: n.healthy ? "ok" : "bad", title: n.last_error || "" }, n.healthy ? (n.degraded ? "degraded" : "healthy") : "down" + (n.last_error ? ": " + n.last_error : "")),
      el("td", { class: "num" }, n.models),
      el("td", { class: "num" }, n.in_flight))));
    const cluster = health.cluster ? " · cluster Redis " + health.cluster.redis : "";
    return "router " + health.status + cluster;
  }

  function drawDecisions(list) {
    // The table is rebuilt on every poll: a focused row's button gets its focus back.
    const focused = document.activeElement && document.activeElement.closest("#decisions tr");
    const focusedId = focused ? focused.dataset.requestId : null;
    const rows = list.decisions.map((d) => {
      const open = () => openDecision(d.request_id);
      const cache = d.cache === "HIT" ? el("span", { class: "tag hit" }, "HIT" + (d.cache_detail === "semantic" ? " (semantic)" : ""))
        : d.cache === "MISS" ? el("span", { class: "tag miss" }, "MISS")
          : d.cache === "BYPASS" ? el("span", { class: "tag miss", title: d.cache_detail }, "bypass") : "–";
      const row = el("tr", { "data-request-id": d.request_id },
        el("td", {}, el("button", { type: "button", "aria-label": "Breakdown of the decision at " + timeOf(d.unix_ms) + " for " + d.model }, timeOf(d.unix_ms))),
        el("td", {}, d.endpoint),
        el("td", { class: "model" }, d.model, d.chosen_by === "client" ? el("span", { class: "muted" }, " (named)") : null),
        el("td", { class: "category" }, d.category || "–"),
        el("td", { class: "num" }, d.chosen_by === "router" ? fixed(d.confidence, 2) : "–"),
        el("td", {}, d.runner_up || "–"),
        el("td", {}, cache),
        el("td", { class: "num" }, fixed(d.latency_ms, 1) + " ms"),
        el("td", { class: "num " + (d.status >= 400 || d.status === 0 ? "bad" : "") }, d.status || "aborted"));
      row.addEventListener("click", (event) => {
        if (event.target.closest("button") === null) open();
      });
      row.querySelector("button").addEventListener("click", open);
      return row;
    });
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 9, class: "muted" }, "No model request yet")));
    fill($("decisions").tBodies[0], rows);
    if (focusedId) focusDecision(focusedId);
  }

  function focusDecision(id) {
    const row = [...$("decisions").tBodies[0].rows].find((r) => r.dataset.requestId === id);
    if (row) row.querySelector("button").focus();
  }

  async function openDecision(id) {
    const dialog = $("detail");
    dialog.dataset.requestId = id;
    const body = $("detail-body");
    $("detail-title").textContent = "Decision " + id;
    body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    if (!dialog.open) dialog.showModal();
    try {
      const d = await getJSON("/admin/decisions/" + encodeURIComponent(id));
      body.replaceChildren(...breakdown(d));
    } catch (err) {
      if (err instanceof AuthNeeded) {
        dialog.close();
        showLogin(err.message);
      } else body.replaceChildren(el("p", { class: "error" }, String(err.message)));
    }
  }

  function breakdown(d) {
    const out = [el("p", {}, el("strong", {}, d.model), " for " + d.endpoint + " at " + new Date(d.unix_ms).toLocaleString() + " — " + d.reason)];
    const b = d.breakdown;
    if (!b) {
      out.push(el("p", { class: "muted" }, d.has_breakdown === false && d.chosen_by === "router" ? "The breakdown is kept for the newest decisions only." : "No breakdown: the client named the model, so nothing was scored."));
      return out;
    }
    const cats = Object.entries(b.analysis.categories).sort((a, c) => c[1] - a[1]);
    out.push(el("h3", {}, "Prompt analysis (complexity " + fixed(b.analysis.complexity, 2) + ")"));
    out.push(el("table", {}, el("tbody", {}, ...cats.map(([name, p]) => {
      const bar = el("span", { class: "bar", "aria-hidden": "true" });
      bar.style.width = Math.round(p * 160) + "px";
      return el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, bar, fixed(p * 100, 1) + "%"));
    }))));
    const scoring = b.scoring;
    if (!scoring) return out;
    const category = d.category;
    out.push(el("h3", {}, "Scoring (quality weight " + fixed(scoring.weights ? scoring.weights.quality : scoring.quality_weight, 2) + ")"));
    const head = el("tr", {}, ...["Model", "Total", "Quality (" + (category || "") + "): prior → evidence → posterior", "Speed", "Loaded", "Pinned", "Feedback", "Size penalty"].map((h) => el("th", { scope: "col" }, h)));
    const rows = (scoring.candidates || []).slice().sort((a, c) => (c.total || -1e9) - (a.total || -1e9)).map((c) => {
      if (!c.terms) return el("tr", {}, el("td", {}, c.model), el("td", { colspan: 7, class: "muted" }, "left out: " + (c.excluded_because || "")));
      const t = c.terms;
      const q = category && t.quality_by_category ? t.quality_by_category[category] : null;
      const evidence = q && q.evidence ? q.evidence.passed + "/" + q.evidence.of : "none";
      return el("tr", { class: c.model === d.model ? "chosen" : "" },
        el("td", {}, c.model, c.model === d.model ? el("strong", {}, " (chosen)") : null),
        el("td", { class: "num" }, fixed(c.total, 3)),
        el("td", {}, q ? fixed(q.prior, 2) + " → " + evidence + " → " + fixed(q.posterior, 2) : fixed(t.quality, 2)),
        el("td", { class: "num" }, fixed(t.speed, 2)),
        el("td", { class: "num" }, fixed(t.loaded_bonus, 2)),
        el("td", { class: "num" }, fixed(t.pinned_bonus, 2)),
        el("td", { class: "num" }, fixed(t.feedback, 2)),
        el("td", { class: "num" }, fixed(t.size_penalty, 2)));
    });
    out.push(el("div", { class: "scroll" }, el("table", { class: "candidates" }, el("thead", {}, head), el("tbody", {}, ...rows))));
    return out;
  }

  function drawActivity(activity, now) {
    const step = activity.bucket_seconds * 1000;
    const from = now - activity.minutes * 60000;
    const start = Math.floor(from / step) * step;
    const byStart = new Map(activity.buckets.map((b) => [b.start_unix_ms, b]));
    const times = [];
    for (let t = start; t <= now; t += step) times.push(t);
    const at = (t) => byStart.get(t);
    const totals = { requests: 0, hits: 0, lookups: 0, limited: 0, errors: 0 };
    const modelTotals = new Map();
    activity.buckets.forEach((b) => {
      totals.requests += b.requests;
      totals.hits += b.cache_hits;
      totals.lookups += b.cache_lookups;
      totals.limited += b.rate_limited;
      totals.errors += b.errors;
      for (const [m, n] of Object.entries(b.per_model)) modelTotals.set(m, (modelTotals.get(m) || 0) + n);
    });
    const models = [...modelTotals.entries()].sort((a, c) => c[1] - a[1]).map(([m]) => m);
    const top = models.slice(0, 7);
    const perModel = top.map((m, i) => ({ name: m, color: i, latest: modelTotals.get(m), points: times.map((t) => [t + step / 2, at(t) ? at(t).per_model[m] || 0 : 0]) }));
    if (models.length > top.length) {
      perModel.push({ name: "others", color: 7, latest: models.slice(7).reduce((s, m) => s + modelTotals.get(m), 0), points: times.map((t) => [t + step / 2, at(t) ? models.slice(7).reduce((s, m) => s + (at(t).per_model[m] || 0), 0) : 0]) });
    }
    const span = { from, to: now };
    lineChart($("per-model"), $("per-model-legend"), { ...span, series: perModel, label: "Requests per model per 10 seconds" });
    const categories = ["coding", "reasoning", "creativity", "factual"];
    lineChart($("per-category"), $("per-category-legend"), {
      ...span,
      label: "Requests per category per 10 seconds",
      series: categories.map((c, i) => ({ name: c, color: i, latest: activity.buckets.reduce((s, b) => s + (b.per_category[c] || 0), 0), points: times.map((t) => [t + step / 2, at(t) ? at(t).per_category[c] : 0]) })),
    });
    lineChart($("hit-rate"), $("hit-rate-legend"), {
      ...span,
      yMax: 100,
      unit: "%",
      label: "Cache hit rate per 10 seconds",
      series: [{ name: "hit rate", color: 2, latest: totals.lookups ? fixed((100 * totals.hits) / totals.lookups, 1) + "%" : "no lookups", points: times.map((t) => [t + step / 2, at(t) && at(t).cache_lookups ? (100 * at(t).cache_hits) / at(t).cache_lookups : null]) }],
    });
    lineChart($("problems"), $("problems-legend"), {
      ...span,
      label: "Rate-limited requests and errors per 10 seconds",
      series: [
        { name: "rate-limited (429)", color: 3, latest: totals.limited, points: times.map((t) => [t + step / 2, at(t) ? at(t).rate_limited : 0]) },
        { name: "errors", color: 1, latest: totals.errors, points: times.map((t) => [t + step / 2, at(t) ? at(t).errors : 0]) },
      ],
    });
    const pairs = [
      ["Model requests", totals.requests],
      ["Cache hit rate", totals.lookups ? fixed((100 * totals.hits) / totals.lookups, 1) + "% of " + totals.lookups + " lookups" : "no lookups"],
      ["Rate-limited", totals.limited],
      ["Errors", totals.errors],
      ["Models used", models.length],
    ];
    $("totals").replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  function drawProfiles(data) {
    const profiles = data.profiles || [];
    const categories = [...new Set(profiles.flatMap((p) => Object.keys(p.categories || {})))].sort();
    const head = ["Model", "Node", ...categories, "Tokens/s", "TTFT", "VRAM", "Profiled"];
    $("profiles").tHead.rows[0].replaceChildren(...head.map((h, i) => el("th", { scope: "col", class: i >= 2 ? "num" : "" }, h)));
    const rows = profiles.map((p) => el("tr", {},
      el("td", {}, p.model),
      el("td", {}, shortNode(p.node_url)),
      ...categories.map((c) => {
        const r = (p.categories || {})[c];
        return el("td", { class: "num", title: r ? "95% interval " + fixed(r.ci_low, 2) + "–" + fixed(r.ci_high, 2) : "" },
          r ? fixed(r.score, 2) + " (" + r.correct + "/" + r.total + ", " + fixed(r.ci_low, 2) + "–" + fixed(r.ci_high, 2) + ")" : "–");
      }),
      el("td", { class: "num" }, fixed(p.tokens_per_sec, 1)),
      el("td", { class: "num" }, p.ttft_ms === null || p.ttft_ms === undefined ? "–" : fixed(p.ttft_ms, 0) + " ms"),
      el("td", { class: "num" }, p.vram_bytes ? fixed(p.vram_bytes / 1e9, 2) + " GB" : "–"),
      el("td", { class: "num" }, new Date(p.profiled_unix_ms).toLocaleString())));
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: head.length, class: "muted" }, "No model profiled yet (router.profiling, POST /admin/reprofile)")));
    fill($("profiles").tBodies[0], rows);
  }

  // ---- polling -----------------------------------------------------------------------------

  // Polling stops while the key is missing or wrong; submitting the form starts it again.
  function showLogin(why) {
    loggedOut = true;
    clearInterval(timer);
    timer = null;
    $("board").hidden = true;
    $("login").hidden = false;
    $("forget").hidden = true;
    for (const id of ["decisions", "loaded", "nodes", "profiles"]) $(id).tBodies[0].replaceChildren();
    $("login-error").textContent = adminKey() ? "That key was refused: " + why : "";
    setStatus("Admin key needed", true);
    $("key").focus();
  }

  // The live region only speaks when the state changes; the time of the last update is apart.
  function setStatus(text, bad) {
    const status = $("status");
    if (status.textContent !== text) status.textContent = text;
    status.classList.toggle("bad", Boolean(bad));
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      // The decisions first: a 401 there shows the key prompt before anything is drawn.
      const decisions = await getJSON("/admin/decisions?limit=50");
      const minutes = Number($("window").value) || 60;
      const [vram, activity, profiles, health] = await Promise.all([
        getJSON("/admin/vram?history_points=400&history_minutes=" + minutes),
        getJSON("/admin/activity?minutes=" + minutes),
        getJSON("/admin/profiles"),
        getJSON("/health", 503),
      ]);
      const now = activity.now_unix_ms;
      $("login").hidden = true;
      $("board").hidden = false;
      $("forget").hidden = !adminKey();
      drawDecisions(decisions);
      drawVram(vram, now, minutes);
      $("vram-title").textContent = "GPU memory, last " + windowName(minutes);
      $("activity-title").textContent = "Traffic, last " + windowName(minutes) + " (10-second buckets)";
      $("totals-title").textContent = "Last " + windowName(minutes);
      drawActivity(activity, now);
      drawProfiles(profiles);
      const state = drawNodes(health);
      setStatus(state + (paused ? " · paused" : ""), health.status !== "ok");
      $("updated").textContent = "updated " + timeOf(Date.now());
    } catch (err) {
      if (err instanceof AuthNeeded) showLogin(err.message);
      else setStatus("Update failed: " + err.message + " (retrying)", true);
    } finally {
      inFlight = false;
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = paused || loggedOut ? null : setInterval(refresh, POLL_MS);
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("key").value);
    $("key").value = "";
    loggedOut = false;
    refresh().then(schedule);
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    showLogin("");
  });
  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").setAttribute("aria-pressed", String(paused));
    $("pause").textContent = paused ? "Resume updates" : "Pause updates";
    schedule();
    if (!paused) refresh();
  });
  $("detail-close").addEventListener("click", () => $("detail").close());
  // Back to the row the dialog was opened from (rebuilt meanwhile, found by its id).
  $("detail").addEventListener("close", () => focusDecision($("detail").dataset.requestId));
  $("window").addEventListener("change", refresh);
  refresh();
  schedule();
})();
