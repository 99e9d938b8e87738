// The HTML report's script (see harness/src/report/html.rs): draws the truth tables from the
// JSON in #data, the filters and the details panel. No framework and no network. Everything
// taken from the data reaches the page through textContent or setAttribute, never as markup.
// This file must never contain the characters that end a script element or open an HTML
// comment; the unit tests check it.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const state = { hideNs: new Set(), hideProto: new Set(), onlyMismatches: false, edge: null };
  const cellOf = new WeakMap();

  const VERDICTS = {
    "allow-ok": "allowed, as expected",
    "deny-dropped": "denied, as expected (dropped: timeout)",
    "deny-rejected": "denied, as expected (rejected)",
    "blocked-allow": "MISMATCH: expected allow, seen denied",
    "leaked-deny": "MISMATCH: expected deny, seen allowed",
    "broken": "MISMATCH: wrong pod or protocol answered, or the check could not run",
  };

  readHash();
  buildFilters();
  render();
  window.addEventListener("hashchange", () => {
    readHash();
    syncFilters();
    render();
  });

  /** An element with attributes (null and false ones left out) and children. */
  function el(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      element.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      element.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return element;
  }

  function namespaceOf(pod) {
    const slash = pod.indexOf("/");
    return slash < 0 ? "" : pod.slice(0, slash);
  }

  function nameOf(pod) {
    return pod.slice(pod.indexOf("/") + 1);
  }

  function milliseconds(value) {
    if (typeof value !== "number") return "?";
    return (value < 10 ? value.toFixed(1) : Math.round(value).toString()) + " ms";
  }

  // The URL fragment holds the view: hide-ns=a,b&hide-proto=UDP&only=mismatches&edge=TRIAL.
  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const list = (key) => (params.get(key) || "").split(",").filter((v) => v !== "");
    state.hideNs = new Set(list("hide-ns"));
    state.hideProto = new Set(list("hide-proto"));
    state.onlyMismatches = params.get("only") === "mismatches";
    state.edge = params.get("edge");
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.hideNs.size) params.set("hide-ns", [...state.hideNs].join(","));
    if (state.hideProto.size) params.set("hide-proto", [...state.hideProto].join(","));
    if (state.onlyMismatches) params.set("only", "mismatches");
    if (state.edge) params.set("edge", state.edge);
    const hash = params.toString();
    try {
      history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    } catch (error) {
      // Some browsers refuse history changes on file: pages; the view still works.
    }
  }

  function buildFilters() {
    const form = document.getElementById("filters");
    const group = (legend, key, values, hidden) =>
      el(
        "fieldset",
        { "data-filter": key },
        el("legend", {}, legend),
        ...values.map((value) =>
          el(
            "label",
            {},
            el("input", { type: "checkbox", name: key, value: value, checked: !hidden.has(value) }),
            " " + (value === "" ? "(none)" : value)
          )
        )
      );
    form.append(
      group("Namespace", "ns", data.namespaces, state.hideNs),
      group("Protocol", "proto", data.protocols, state.hideProto),
      el(
        "fieldset",
        { "data-filter": "only" },
        el("legend", {}, "Show"),
        el(
          "label",
          {},
          el("input", { type: "checkbox", name: "only", value: "mismatches", checked: state.onlyMismatches }),
          " only rows and columns with a mismatch"
        )
      )
    );
    form.addEventListener("submit", (event) => event.preventDefault());
    form.addEventListener("change", () => {
      const unchecked = (key) =>
        new Set([...form.querySelectorAll(`input[name="${key}"]`)].filter((i) => !i.checked).map((i) => i.value));
      state.hideNs = unchecked("ns");
      state.hideProto = unchecked("proto");
      state.onlyMismatches = form.querySelector('input[name="only"]').checked;
      writeHash();
      render();
    });
  }

  function syncFilters() {
    for (const input of document.querySelectorAll("#filters input")) {
      if (input.name === "ns") input.checked = !state.hideNs.has(input.value);
      if (input.name === "proto") input.checked = !state.hideProto.has(input.value);
      if (input.name === "only") input.checked = state.onlyMismatches;
    }
  }

  function counts(cells) {
    const c = { total: cells.length, passed: 0, failed: 0, blocked: 0, leaked: 0, broken: 0 };
    for (const cell of cells) {
      if (cell.edge.passed) {
        c.passed += 1;
        continue;
      }
      c.failed += 1;
      if (cell.kind === "broken") c.broken += 1;
      else if (cell.edge.expected === "allow") c.blocked += 1;
      else c.leaked += 1;
    }
    return c;
  }

  // Worded as the text report's counts line (report::matrix::counts_line).
  function countsLine(c) {
    let line = `${c.total} edges: ${c.passed} passed, ${c.failed} failed`;
    if (c.failed > 0) line += ` (${c.blocked} allow blocked, ${c.leaked} deny open, ${c.broken} broken)`;
    return line;
  }

  function badge(passed) {
    return el("span", { class: "badge " + (passed ? "pass" : "fail") }, passed ? "PASS" : "FAIL");
  }

  function render() {
    const root = document.getElementById("profiles");
    root.replaceChildren(
      ...data.profiles.map(renderProfile),
      ...(data.profiles.length ? [] : [el("p", { class: "empty" }, "No results in this report.")])
    );
    renderVerdict();
    if (state.edge) {
      const td = [...document.querySelectorAll("td.cell")].find((cell) => cell.dataset.edge === state.edge);
      if (td) select(td);
    }
  }

  function renderVerdict() {
    const all = data.profiles.flatMap((p) => p.fixtures.flatMap((f) => f.tables.flatMap((t) => t.cells)));
    const fixtures = data.profiles.reduce((n, p) => n + p.fixtures.length, 0);
    const faults = data.profiles.some((p) => p.fixtures.some((f) => f.metadata.faults.length));
    const c = counts(all);
    const verdict = document.getElementById("verdict");
    verdict.className = c.failed ? "fail" : "pass";
    verdict.replaceChildren(
      badge(c.failed === 0),
      ` ${countsLine(c)}, in ${fixtures} fixture${fixtures === 1 ? "" : "s"} of ` +
        `${data.profiles.length} profile${data.profiles.length === 1 ? "" : "s"}` +
        (faults ? "; FAULTS INJECTED on purpose in some runs" : "")
    );
  }

  function renderProfile(profile, index) {
    const cells = profile.fixtures.flatMap((f) => f.tables.flatMap((t) => t.cells));
    const c = counts(cells);
    return el(
      "section",
      { class: "profile", id: `profile-${index}`, "data-profile": profile.name },
      el("h2", {}, badge(c.failed === 0), " ", profile.name),
      ...profile.fixtures.map((fixture) => renderFixture(profile, fixture)),
      ...(profile.fixtures.length ? [] : [el("p", { class: "empty" }, "No fixture was run.")])
    );
  }

  function renderFixture(profile, fixture) {
    const m = fixture.metadata;
    const c = counts(fixture.tables.flatMap((t) => t.cells));
    return el(
      "article",
      { class: "fixture", "data-fixture": m.fixture },
      el("h3", {}, badge(c.failed === 0), " ", m.fixture),
      el("p", { class: "fixture-summary" }, `${countsLine(c)} (backend ${m.backend}, ${m.pods} pods)`),
      m.faults.length
        ? el("p", { class: "faults" }, `FAULTS INJECTED: ${m.faults.join(", ")} (the data plane was broken on purpose)`)
        : null,
      el(
        "p",
        { class: "meta" },
        `started ${m.started_at}, finished ${m.finished_at}; probe timeout ${m.probe_timeout_ms} ms, ` +
          `convergence timeout ${m.converge_timeout_ms} ms; deploy ${milliseconds(m.phases.deploy_ms)}, ` +
          `baseline ${milliseconds(m.phases.baseline_ms)}, teardown ${milliseconds(m.phases.teardown_ms)}; ` +
          `harness ${m.harness_version}, fixture hash ${m.topology_hash}`
      ),
      ...fixture.tables.map((table) => renderTable(profile, fixture, table))
    );
  }

  function renderTable(profile, fixture, table) {
    const c = counts(table.cells);
    const view = visible(table);
    const shown = table.cells.filter((cell) => view.rowSet.has(cell.row) && view.columnSet.has(cell.column));
    return el(
      "section",
      { class: "step", "data-step": table.step },
      el("h4", {}, badge(c.failed === 0), " ", table.step),
      table.description ? el("p", { class: "description" }, table.description) : null,
      el(
        "p",
        { class: "summary" + (table.converged ? "" : " not-converged"), "data-step": table.step },
        `${countsLine(c)}; ${table.convergence}`
      ),
      shown.length < table.cells.length
        ? el("p", { class: "filtered" }, `The filters show ${shown.length} of ${table.cells.length} edges.`)
        : null,
      shown.length
        ? el("div", { class: "scroll" }, renderMatrix(profile, fixture, table, view))
        : el("p", { class: "empty" }, "No edge of this table passes the filters.")
    );
  }

  /** The rows and columns the filters leave. */
  function visible(table) {
    let rows = table.rows.map((_, i) => i).filter((i) => !state.hideNs.has(namespaceOf(table.rows[i])));
    let columns = table.columns
      .map((_, i) => i)
      .filter((i) => {
        const column = table.columns[i];
        return !state.hideNs.has(namespaceOf(column.dst)) && !state.hideProto.has(column.protocol);
      });
    if (state.onlyMismatches) {
      const rowSet = new Set(rows);
      const columnSet = new Set(columns);
      const bad = table.cells.filter((c) => c.mismatch && rowSet.has(c.row) && columnSet.has(c.column));
      rows = rows.filter((r) => bad.some((c) => c.row === r));
      columns = columns.filter((k) => bad.some((c) => c.column === k));
    }
    return { rows, columns, rowSet: new Set(rows), columnSet: new Set(columns) };
  }

  function renderMatrix(profile, fixture, table, view) {
    const byPosition = new Map(table.cells.map((cell) => [`${cell.row}:${cell.column}`, cell]));
    const groups = [];
    for (const k of view.columns) {
      const namespace = namespaceOf(table.columns[k].dst);
      if (groups.length && groups[groups.length - 1].namespace === namespace) groups[groups.length - 1].span += 1;
      else groups.push({ namespace, span: 1 });
    }
    const columnLabel = (column) => `${column.dst} ${column.port}/${column.protocol}`;
    const head = el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { class: "corner", rowspan: 2, scope: "col" }, "source \u2193 destination \u2192"),
        ...groups.map((g) =>
          el(
            "th",
            { class: "ns-group", colspan: g.span, scope: "colgroup", title: `namespace ${g.namespace}` },
            el("div", {}, g.namespace)
          )
        )
      ),
      el(
        "tr",
        {},
        ...view.columns.map((k) => {
          const column = table.columns[k];
          return el(
            "th",
            { class: "col", scope: "col", title: columnLabel(column), "data-protocol": column.protocol },
            el("span", {}, `${nameOf(column.dst)} `, el("span", { class: "port" }, `${column.port}/${column.protocol}`))
          );
        })
      )
    );
    const body = el(
      "tbody",
      {},
      ...view.rows.map((r) => {
        const source = table.rows[r];
        return el(
          "tr",
          {},
          el(
            "th",
            { class: "row", scope: "row", title: source },
            el("span", { class: "ns" }, `${namespaceOf(source)}/`),
            nameOf(source)
          ),
          ...view.columns.map((k) => {
            const cell = byPosition.get(`${r}:${k}`);
            if (cell) return renderCell(profile, fixture, table, cell);
            if (table.columns[k].dst === source) return el("td", { class: "same", title: "same pod, not probed" }, "-");
            return el("td", { class: "none" });
          })
        );
      })
    );
    return el(
      "table",
      { class: "matrix", "aria-label": `${fixture.metadata.fixture} ${table.step}: sources by destination ports` },
      head,
      body
    );
  }

  function edgeLine(edge) {
    return `${edge.src} -> ${edge.dst} ${edge.port}/${edge.protocol}` + (edge.via === "pod" ? "" : ` via ${edge.via}`);
  }

  function tooltip(cell) {
    const edge = cell.edge;
    return [
      edgeLine(edge),
      `expected ${edge.expected}, observed ${edge.observed} (${milliseconds(edge.latency_ms)}): ${VERDICTS[cell.kind]}`,
      edge.dialled ? `dialled: ${edge.dialled}` : null,
      edge.detail ? `detail: ${edge.detail}` : null,
      "",
      edge.explanation,
    ]
      .filter((line) => line !== null)
      .join("\n");
  }

  function renderCell(profile, fixture, table, cell) {
    const edge = cell.edge;
    const td = el("td", {
      class: `cell k-${cell.kind}` + (cell.mismatch ? " mismatch" : ""),
      "data-edge": edge.name,
      "data-kind": cell.kind,
      title: tooltip(cell),
    });
    const button = el(
      "button",
      {
        type: "button",
        "aria-label": `${edgeLine(edge)}: expected ${edge.expected}, observed ${edge.observed}, ${VERDICTS[cell.kind]}`,
      },
      cell.symbol
    );
    button.addEventListener("click", () => {
      select(td);
      state.edge = edge.name;
      writeHash();
    });
    td.append(button);
    cellOf.set(td, { profile, fixture, table, cell });
    return td;
  }

  function select(td) {
    for (const other of document.querySelectorAll("td.cell.selected")) other.classList.remove("selected");
    td.classList.add("selected");
    const { profile, fixture, table, cell } = cellOf.get(td);
    const edge = cell.edge;
    const panel = document.getElementById("details");
    panel.dataset.edge = edge.name;
    const entry = (term, value) => (value ? [el("dt", {}, term), el("dd", {}, value)] : []);
    panel.replaceChildren(
      el("h2", {}, "Edge details"),
      el("p", { class: "edge-verdict" + (cell.mismatch ? " mismatch-text" : "") }, badge(!cell.mismatch), " ", VERDICTS[cell.kind]),
      el(
        "dl",
        {},
        ...entry("Source", edge.src),
        ...entry("Destination", edge.dst),
        ...entry("Port", `${edge.port}/${edge.protocol}`),
        ...entry("Probe mode", edge.via),
        ...entry("Expected", edge.expected),
        ...entry("Observed", `${edge.observed} in ${milliseconds(edge.latency_ms)}`),
        ...entry("Dialled", edge.dialled),
        ...entry("Detail", edge.detail),
        ...entry("Where", `${profile.name} / ${fixture.metadata.fixture} / ${table.step}`),
        ...entry("Trial", edge.name)
      ),
      el("h3", {}, "Why the policies " + (edge.expected === "allow" ? "allow" : "deny") + " it"),
      el("pre", { class: "explanation" }, edge.explanation)
    );
  }
})();
