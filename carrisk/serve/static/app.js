// carrisk calculator page: reads the form, calls POST /predict and POST /explain on this server, draws the result.
// No storage, no cookies, no third-party requests: everything stays in this page's memory until it is closed.
"use strict";

const FIELDS = [
  "age_years", "sex", "car_product", "blina_exposed", "blina_response", "marrow_blasts_pct", "cns_status",
  "extramedullary_disease", "cd19_expression", "kmt2a_status", "cytogenetics", "prior_hsct_count",
  "months_since_last_hsct", "prior_relapses", "down_syndrome", "prior_inotuzumab",
];
const NUMBERS = new Set(["age_years", "prior_hsct_count", "months_since_last_hsct", "prior_relapses"]);
const LABELS = {
  blina_status: "Blinatumomab", disease_burden: "Disease burden", marrow_blasts_pct: "Marrow blasts (%)",
  cd19_expression: "CD19 expression", kmt2a: "KMT2A", prior_hsct: "Prior transplant", age_years: "Age (years)",
  sex: "Sex", car_product: "CAR product", prior_relapses: "Prior relapses", cns_status: "CNS status",
  down_syndrome: "Down syndrome", prior_inotuzumab: "Prior inotuzumab",
};
const VALUE_LABELS = {
  low_mrd_positive: "low, MRD-positive", low_mrd_unknown: "low (M1), MRD unknown", undetectable: "MRD-negative",
  not_rearranged: "not rearranged", not_tested: "not tested", dim_or_partial: "dim or partial",
  exposed_unknown: "exposed, response unknown", nci_cd28: "NCI CD19-28z", scri_plat02: "SCRI PLAT-02",
  chop_penn: "CHOP/Penn", naive: "naive", missing: "unknown",
};
const RISK_TEXT = { low: "Low", intermediate: "Intermediate", high: "High" };
const DAYS_PER_MONTH = 30.4375;
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let cutpoints = null;
let shown = null; // the last prediction, redrawn when the window changes size

function pct(p, digits = 1) {
  return p === null || p === undefined ? "n/a" : (100 * p).toFixed(digits) + "%";
}

function headers() {
  const h = { "Content-Type": "application/json", Accept: "application/json" };
  const token = $("token").value.trim();
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store", credentials: "omit",
  });
  const data = await response.json().catch(() => ({ detail: "the server sent no JSON" }));
  if (!response.ok) {
    const err = new Error(typeof data.detail === "string" ? data.detail : "request failed");
    err.status = response.status;
    err.problems = data.problems || [];
    throw err;
  }
  const notes = response.headers.get("X-Carrisk-Warnings");
  return { data, notes: notes ? JSON.parse(notes) : [] };
}

function record() {
  const rec = { patient_id: "calculator" };
  for (const name of FIELDS) {
    const raw = name === "marrow_blasts_pct" ? marrowValue() : $(name).value.trim();
    if (raw === "" || raw === null) rec[name] = null;
    else rec[name] = NUMBERS.has(name) ? Number(raw) : raw;
  }
  return rec;
}

function marrowValue() {
  const kind = $("marrow_kind").value;
  if (kind !== "percent") return kind;
  const value = $("marrow_blasts_pct").value.trim();
  return value === "" ? "" : String(Number(value));
}

function syncForm() {
  const exposed = $("blina_exposed").value === "yes";
  $("blina_response").disabled = !exposed;
  if (!exposed) $("blina_response").value = "";
  const measured = $("marrow_kind").value === "percent";
  $("marrow_blasts_pct").disabled = !measured;
  if (!measured) $("marrow_blasts_pct").value = "";
  const transplanted = Number($("prior_hsct_count").value) > 0;
  $("months_since_last_hsct").disabled = !transplanted;
  if (!transplanted) $("months_since_last_hsct").value = "";
}

function svg(tag, attrs, parent) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function stepPath(xs, ys, x, y) {
  let d = `M${x(0)},${y(1)}`;
  xs.forEach((t, i) => { d += ` H${x(t)} V${y(ys[i])}`; });
  return d;
}

function drawCurve(prediction) {
  const box = $("curve");
  box.replaceChildren();
  // Drawn at the box's own width, so that the labels keep their size on a phone.
  const width = Math.max(300, Math.min(640, box.clientWidth || 640));
  const height = width < 500 ? 230 : 300, m = { l: 44, r: 14, t: 12, b: 40 };
  const maxMonths = 24;
  const months = (d) => d / DAYS_PER_MONTH;
  const keep = (i, days) => months(days[i]) <= maxMonths;
  const days = prediction.curve.days.filter((_, i) => keep(i, prediction.curve.days));
  const efs = prediction.curve.efs.filter((_, i) => keep(i, prediction.curve.days));
  const x = (d) => m.l + (months(d) / maxMonths) * (width - m.l - m.r);
  const y = (p) => m.t + (1 - p) * (height - m.t - m.b);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Predicted EFS curve" }, box);
  for (let p = 0; p <= 1.0001; p += 0.25) {
    svg("line", { x1: m.l, x2: width - m.r, y1: y(p), y2: y(p), class: "grid" }, root);
    svg("text", { x: m.l - 6, y: y(p) + 4, class: "tick", "text-anchor": "end" }, root).textContent = `${p * 100}%`;
  }
  for (let mo = 0; mo <= maxMonths; mo += 6) {
    svg("line", { x1: x(mo * DAYS_PER_MONTH), x2: x(mo * DAYS_PER_MONTH), y1: m.t, y2: height - m.b, class: "grid" }, root);
    svg("text", { x: x(mo * DAYS_PER_MONTH), y: height - m.b + 16, class: "tick", "text-anchor": "middle" }, root)
      .textContent = String(mo);
  }
  svg("text", { x: (m.l + width - m.r) / 2, y: height - 6, class: "axis", "text-anchor": "middle" }, root)
    .textContent = "months after infusion";
  const band = prediction.band;
  if (band) {
    const idx = band.days.map((d, i) => i).filter((i) => months(band.days[i]) <= maxMonths && band.lo[i] !== null);
    if (idx.length) {
      let upper = `M${x(0)},${y(1)}`;
      idx.forEach((i) => { upper += ` H${x(band.days[i])} V${y(band.hi[i])}`; });
      upper += ` H${x(maxMonths * DAYS_PER_MONTH)}`;
      let lower = ` V${y(band.lo[idx[idx.length - 1]])}`;
      for (let k = idx.length - 1; k >= 0; k--) {
        const i = idx[k];
        lower += ` H${x(band.days[i])} V${y(k > 0 ? band.lo[idx[k - 1]] : 1)}`;
      }
      svg("path", { d: upper + lower + ` H${x(0)} Z`, class: "band" }, root);
    }
  }
  const last = efs.length ? efs[efs.length - 1] : 1;
  svg("path", { d: stepPath(days, efs, x, y) + ` H${x(maxMonths * DAYS_PER_MONTH)} V${y(last)}`, class: "curve" }, root);
  for (const [mo, value] of [[6, prediction.efs_6mo], [12, prediction.efs_12mo]]) {
    svg("circle", { cx: x(mo * DAYS_PER_MONTH), cy: y(value), r: 4.5, class: "mark" }, root);
    svg("text", { x: x(mo * DAYS_PER_MONTH) + 7, y: y(value) - 8, class: "mark-label" }, root).textContent = pct(value, 0);
  }
}

function drawWaterfall(explanation) {
  const box = $("waterfall");
  box.replaceChildren();
  const items = Object.entries(explanation.contributions)
    .filter(([, v]) => Math.abs(v) >= 0.0005)
    .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const small = Object.entries(explanation.contributions).filter(([, v]) => Math.abs(v) < 0.0005);
  let level = explanation.base_value;
  const steps = items.map(([name, effect]) => {
    const start = level;
    level += effect;
    return { name, effect, start, end: level };
  });
  const all = [explanation.base_value, explanation.prediction, ...steps.flatMap((s) => [s.start, s.end])];
  const lo = Math.max(0, Math.min(...all) - 0.02), hi = Math.min(1, Math.max(...all) + 0.02);
  const pos = (p) => `${(100 * (p - lo)) / (hi - lo)}%`;
  const row = (label, value, cls, start, end) => {
    const div = document.createElement("div");
    div.className = `wf-row ${cls}`;
    const name = document.createElement("span");
    name.className = "wf-label";
    name.textContent = label;
    const track = document.createElement("span");
    track.className = "wf-track";
    const bar = document.createElement("span");
    bar.className = "wf-bar";
    bar.style.left = pos(Math.min(start, end));
    bar.style.width = `max(2px, ${(100 * Math.abs(end - start)) / (hi - lo)}%)`;
    track.appendChild(bar);
    const num = document.createElement("span");
    num.className = "wf-value";
    num.textContent = value;
    div.append(name, track, num);
    box.appendChild(div);
  };
  row("Average of the training patients", pct(explanation.base_value), "wf-total", lo, explanation.base_value);
  for (const s of steps) {
    const shown = explanation.values[s.name];
    const value = String(shown ?? "missing");
    const label = `${LABELS[s.name] || s.name.replaceAll("_", " ")}: ${VALUE_LABELS[value] || value.replaceAll("_", " ")}`;
    const points = (100 * s.effect).toFixed(1);
    row(label, `${s.effect >= 0 ? "+" : ""}${points} pts`, s.effect >= 0 ? "wf-up" : "wf-down", s.start, s.end);
  }
  row("This patient", pct(explanation.prediction), "wf-total", lo, explanation.prediction);
  if (small.length) {
    const note = document.createElement("p");
    note.className = "hint";
    note.textContent = `No visible effect (< 0.05 pts): ${small.map(([n]) => LABELS[n] || n).join(", ")}.`;
    box.appendChild(note);
  }
}

// The form's own words for a record column ("Age at infusion"), not the column name ("age_years").
function fieldLabel(field) {
  const label = field && document.querySelector(`label[for="${field === "marrow_blasts_pct" ? "marrow_kind" : field}"]`);
  if (!label) return field || "request";
  const copy = label.cloneNode(true);
  copy.querySelectorAll(".unit").forEach((unit) => unit.remove());
  return copy.textContent.trim();
}

function showProblems(err) {
  const box = $("error");
  box.replaceChildren();
  const head = document.createElement("p");
  head.textContent = err.status === 422 ? "Please check these entries:" : `Error: ${err.message}`;
  box.appendChild(head);
  const list = document.createElement("ul");
  for (const p of err.problems || []) {
    const li = document.createElement("li");
    li.textContent = p.message || `${fieldLabel(p.field)}: expected ${p.expected}`;
    list.appendChild(li);
    if (p.field && $(p.field)) $(p.field).setAttribute("aria-invalid", "true");
  }
  box.appendChild(list);
  box.hidden = false;
}

async function calculate(event) {
  event.preventDefault();
  const button = $("calculate");
  button.disabled = true;
  $("error").hidden = true;
  document.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  try {
    const rec = [record()];
    const entered = Object.entries(rec[0]).filter(([name, value]) => name !== "patient_id" && value !== null);
    if (entered.length === 0) {
      throw { status: 422, problems: [{ message: "Every field is empty: enter the patient's details first." }] };
    }
    const [pred, expl] = await Promise.all([call("POST", "predict?band=true", rec), call("POST", "explain", rec)]);
    const p = pred.data[0];
    $("placeholder").hidden = true;
    $("output").hidden = false; // visible before drawing, so the curve is drawn at the box's real width
    $("efs6").textContent = pct(p.efs_6mo);
    $("efs6-ci").textContent = `95% interval ${pct(p.efs_6mo_lo)} to ${pct(p.efs_6mo_hi)}`;
    $("efs12").textContent = pct(p.efs_12mo);
    $("efs12-ci").textContent = `95% interval ${pct(p.efs_12mo_lo)} to ${pct(p.efs_12mo_hi)}`;
    $("risk-group").textContent = RISK_TEXT[p.risk_group] || p.risk_group;
    $("risk-group").dataset.group = p.risk_group;
    $("risk-note").textContent = cutpoints
      ? `12-month EFS: low if \u2265 ${pct(cutpoints[1], 0)}, high if < ${pct(cutpoints[0], 0)} (training tertiles)`
      : "tertiles of the training patients' 12-month EFS";
    shown = p;
    drawCurve(p);
    drawWaterfall(expl.data[0]);
    const notes = $("notes");
    notes.replaceChildren();
    const assumed = p.assumptions ? [p.assumptions] : [];
    for (const text of new Set([...assumed, ...pred.notes, ...expl.notes])) {
      const li = document.createElement("li");
      li.textContent = `Note: ${text}`;
      notes.appendChild(li);
    }
  } catch (err) {
    $("output").hidden = true;
    showProblems(err);
  } finally {
    button.disabled = false;
  }
}

function showGenericNote(info) {
  // A generic-mode model reads its own columns, not carrisk records: the form cannot feed it.
  $("patient").hidden = true;
  $("result").hidden = true;
  const note = $("generic-note");
  note.textContent = "This server's model was trained in generic mode on its own columns " +
    `(${info.features.join(", ")}), not on carrisk records, so this calculator cannot use it: it needs a ` +
    "clinical carrisk model. The HTTP API serves it: POST /predict (and /explain) with a JSON list of records " +
    "with those keys (null when missing) and an optional patient_id; the schema is at /openapi.json.";
  note.hidden = false;
}

// {"coxnet_cv__alpha": 1.1921, "weights": [0.5, 0.5]} -> "coxnet_cv alpha 1.19; weights 0.5, 0.5"
function readableSettings(settings) {
  if (!settings || Object.keys(settings).length === 0) return "none";
  const number = (v) => (typeof v === "number" ? Number(v.toPrecision(3)).toString() : String(v));
  return Object.entries(settings)
    .map(([name, value]) => `${name.replace(/__/g, " ")} ${Array.isArray(value) ? value.map(number).join(", ") : number(value)}`)
    .join("; ");
}

function showProvenance(info) {
  if (info.mode === "generic") showGenericNote(info);
  $("synthetic-text").textContent = info.synthetic_training_data ? "Model trained on SYNTHETIC data only." : "";
  cutpoints = info.provenance.risk_cutpoints_efs_12mo;
  const p = info.provenance;
  const rows = [
    ["Model", p.model],
    ["Tuned settings", readableSettings(p.hyperparameters)],
    ["Training data", `${info.synthetic_training_data ? "SYNTHETIC cohort" : "cohort"}: ${p.training_rows} patients, ${p.training_events} events`],
    ["Cross-validated Harrell's C", p.cv_harrell_c ? `${p.cv_harrell_c.toFixed(3)} (fold range ${p.cv_harrell_c_range.map((v) => v.toFixed(3)).join("-")})` : "not recorded"],
    ["Intervals", p.interval_method || "n/a"],
    ["Built", `${p.created || "?"}, carrisk ${p.carrisk_version || "?"}`],
    ["Payload SHA-256", p.payload_sha256 ? p.payload_sha256.slice(0, 16) + "..." : "n/a"],
    ["Intended use", info.intended_use],
  ];
  const dl = $("provenance");
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
}

async function loadModelInfo() {
  try {
    showProvenance((await call("GET", "model")).data);
  } catch (err) {
    $("provenance").replaceChildren(document.createTextNode(
      err.status === 401 ? "Enter the access token, then press Calculate." : `Could not load: ${err.message}`));
  }
}

async function start() {
  for (const name of ["blina_exposed", "marrow_kind", "prior_hsct_count"]) {
    for (const kind of ["input", "change"]) $(name).addEventListener(kind, syncForm);
  }
  $("patient").addEventListener("reset", () => setTimeout(syncForm, 0));
  $("patient").addEventListener("submit", calculate);
  $("token").addEventListener("change", loadModelInfo);
  window.addEventListener("resize", () => { if (shown) drawCurve(shown); });
  syncForm();
  try {
    const health = (await call("GET", "health")).data;
    $("token-box").hidden = !health.token_required;
  } catch (err) {
    $("error").textContent = `The server is not answering: ${err.message}`;
    $("error").hidden = false;
  }
  await loadModelInfo();
}

start();
