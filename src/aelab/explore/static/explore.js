// aelab explore: the latent plane as a canvas scatter; clicking or dragging
// decodes the point live; sliders edit the full latent code; optionally a
// latent-space optimization is replayed step by step.  No dependencies.
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const PICK_RADIUS = 6;   // px: a click this close to a dot chooses that test code
const state = { info: null, pts: null, z: null, chosen: -1, path: [],
                inFlight: false, queued: false, decoded: 0, view: null, dragging: false };
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const opts = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify(body) };
  const res = await fetch(path, opts);
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

// ------------------------------------------------------------ the plane
// p = C (z - mean): the page keeps the full code z and moves it within the
// plane through z itself, so off-plane coordinates are kept while dragging.
function project(z) {
  const { mean, components } = state.info.plane;
  return components.map((row) => row.reduce((s, c, j) => s + c * (z[j] - mean[j]), 0));
}

function moveInPlane(z, p) {
  const q = project(z), C = state.info.plane.components;
  return z.map((v, j) => v + C[0][j] * (p[0] - q[0]) + C[1][j] * (p[1] - q[1]));
}

function makeView(xy, canvas) {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of xy) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  const px = 0.08 * Math.max(x1 - x0, 1e-6), py = 0.08 * Math.max(y1 - y0, 1e-6);
  x0 -= px; x1 += px; y0 -= py; y1 += py;
  const sx = canvas.width / (x1 - x0), sy = canvas.height / (y1 - y0);  // each axis fills the canvas
  return { toPx: ([x, y]) => [(x - x0) * sx, canvas.height - (y - y0) * sy],
           fromPx: ([px, py]) => [x0 + px / sx, y0 + (canvas.height - py) / sy] };
}

function draw() {
  const cv = $("scatter"), g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  const { xy, labels } = state.pts;
  g.globalAlpha = 0.75;
  xy.forEach((p, i) => {
    const [px, py] = state.view.toPx(p);
    g.fillStyle = labels ? PALETTE[labels[i] % PALETTE.length] : "#555";
    g.beginPath(); g.arc(px, py, 2.6, 0, 2 * Math.PI); g.fill();
  });
  g.globalAlpha = 1;
  if (state.path.length > 1) {
    g.strokeStyle = "#111"; g.lineWidth = 1.5; g.beginPath();
    state.path.forEach((z, i) => { const [px, py] = state.view.toPx(project(z)); i ? g.lineTo(px, py) : g.moveTo(px, py); });
    g.stroke();
    g.fillStyle = "#111";
    for (const z of state.path) { const [px, py] = state.view.toPx(project(z)); g.fillRect(px - 2, py - 2, 4, 4); }
  }
  if (state.chosen >= 0) ring(g, state.view.toPx(xy[state.chosen]), 7, "#111");
  if (state.z) ring(g, state.view.toPx(project(state.z)), 5, "#e00", true);
}

function ring(g, [x, y], r, color, cross) {
  g.strokeStyle = color; g.lineWidth = 2; g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.stroke();
  if (cross) { g.beginPath(); g.moveTo(x - r - 4, y); g.lineTo(x + r + 4, y); g.moveTo(x, y - r - 4); g.lineTo(x, y + r + 4); g.stroke(); }
}

function nearest(px) {
  let best = -1, bestD = PICK_RADIUS * PICK_RADIUS;
  state.pts.xy.forEach((p, i) => {
    const [x, y] = state.view.toPx(p), d = (x - px[0]) ** 2 + (y - px[1]) ** 2;
    if (d < bestD) { best = i; bestD = d; }
  });
  return best;
}

function canvasPx(cv, ev) {
  const r = cv.getBoundingClientRect();
  return [(ev.clientX - r.left) * cv.width / r.width, (ev.clientY - r.top) * cv.height / r.height];
}

function onPlane(ev, isDown) {
  const px = canvasPx($("scatter"), ev);
  const pick = isDown ? nearest(px) : -1;
  if (pick >= 0) { state.chosen = pick; setCode(state.pts.codes[pick].slice()); }
  else setCode(moveInPlane(state.z, state.view.fromPx(px)));
}

// ------------------------------------------------------------- decoding
// One request in flight; while it runs only the latest code is kept, so a
// fast drag never queues up stale decodes.
function setCode(z, fromSlider) {
  state.z = z;
  if (!fromSlider) syncSliders();
  showCode();
  draw();
  requestDecode();
}

function showCode() {
  $("coords").textContent = "z = [" + state.z.map((v) => v.toFixed(3)).join(", ") + "]";
}

async function requestDecode() {
  if (state.inFlight) { state.queued = true; return; }
  state.inFlight = true;
  try {
    const body = state.info.conditional ? { codes: [state.z], label: +$("decode-as").value } : { codes: [state.z] };
    const out = await api("/api/decode", body);
    showImage(out.images[0], out.shape);
    state.decoded += 1;
    $("decoded").dataset.decoded = String(state.decoded);
    $("status").textContent = `decoded ${state.decoded} code(s)`;
    $("error").hidden = true;
  } catch (e) {
    showError(e);
  } finally {
    state.inFlight = false;
    if (state.queued) { state.queued = false; requestDecode(); }
  }
}

function showImage(flat, [h, w, c]) {
  const img = new ImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const k = i * c;
    img.data[4 * i] = flat[k]; img.data[4 * i + 1] = flat[c > 1 ? k + 1 : k];
    img.data[4 * i + 2] = flat[c > 2 ? k + 2 : k]; img.data[4 * i + 3] = 255;
  }
  const tmp = document.createElement("canvas"); tmp.width = w; tmp.height = h;
  tmp.getContext("2d").putImageData(img, 0, 0);
  const cv = $("decoded"), g = cv.getContext("2d");
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, 0, 0, cv.width, cv.height);
}

function showError(e) { $("error").hidden = false; $("error").textContent = "error: " + e.message; }

// -------------------------------------------------------------- sliders
function buildSliders() {
  const box = $("sliders"), { latent_dim, code_min, code_max } = state.info;
  for (let j = 0; j < latent_dim; j++) {
    const label = document.createElement("label"); label.textContent = `z${j + 1}`;
    const range = document.createElement("input"), num = document.createElement("input");
    range.type = "range"; range.min = code_min[j]; range.max = code_max[j];
    range.step = (code_max[j] - code_min[j]) / 500; range.id = `dim-${j}`;
    num.type = "number"; num.step = "any"; num.id = `num-${j}`;
    const set = (v) => { const z = state.z.slice(); z[j] = v; state.chosen = -1; setCode(z, true); };
    range.addEventListener("input", () => { num.value = (+range.value).toFixed(3); set(+range.value); });
    num.addEventListener("change", () => { if (Number.isFinite(+num.value)) { range.value = num.value; set(+num.value); } });
    box.append(label, range, num);
  }
}

function syncSliders() {
  state.z.forEach((v, j) => { $(`dim-${j}`).value = v; $(`num-${j}`).value = v.toFixed(3); });
}

function buildLegend() {
  const box = $("legend");
  for (const c of state.info.classes) {
    const span = document.createElement("span"), dot = document.createElement("i");
    dot.style.background = PALETTE[c % PALETTE.length];
    span.append(dot, document.createTextNode(String(c)));
    box.append(span);
  }
}

// A conditional model (a CVAE) decodes a code as the class chosen here.
function setUpDecodeAs() {
  if (!state.info.conditional) return;
  $("decode-as-box").hidden = false;
  for (const c of state.info.decode_classes) {
    const o = document.createElement("option"); o.value = c; o.textContent = c; $("decode-as").append(o);
  }
  $("decode-as").addEventListener("change", requestDecode);
}

// ------------------------------------------------- latent-space optimization
function setUpLso() {
  if (!state.info.lso) return;
  $("lso").hidden = false;
  for (const c of state.info.lso_classes) {
    const o = document.createElement("option"); o.value = c; o.textContent = c; $("lso-target").append(o);
  }
  $("lso-run").addEventListener("click", runLso);
}

async function runLso() {
  const target = +$("lso-target").value, steps = Math.round(+$("lso-steps").value);
  $("lso-status").textContent = "optimizing…";
  try {
    const out = await api("/api/lso", { target, start: state.z, steps });
    const pause = Math.min(120, 3000 / out.steps.length);   // replay in at most ~3 s
    state.path = [];
    for (const [i, step] of out.steps.entries()) {   // replay the trajectory step by step
      state.path.push(step.code);
      state.z = step.code; syncSliders(); showCode(); draw();
      showImage(step.image, out.shape);
      $("lso-status").textContent = `step ${i}/${out.steps.length - 1}: p(target) = ${step.prob.toFixed(3)}`;
      await new Promise((r) => setTimeout(r, pause));
    }
    $("lso-status").textContent += out.success ? " · reached the target" : " · target not reached";
  } catch (e) { showError(e); }
}

// ----------------------------------------------------------------- start
async function main() {
  try {
    [state.info, state.pts] = await Promise.all([api("/api/info"), api("/api/points")]);
  } catch (e) { showError(e); return; }
  const { info } = state, cv = $("scatter");
  $("run-name").textContent = info.name;
  $("plane-note").textContent = info.plane.kind === "pca"
    ? `${info.latent_dim}-D codes shown on their first two principal components ` +
      `(${info.plane.explained.map((v) => (100 * v).toFixed(0) + "%").join(" + ")} of the variance)`
    : "2-D latent space shown directly";
  state.view = makeView(state.pts.xy, cv);
  cv.dataset.points = String(state.pts.xy.length);
  buildSliders(); buildLegend(); setUpDecodeAs(); setUpLso();
  cv.addEventListener("pointerdown", (ev) => { state.dragging = true; cv.setPointerCapture(ev.pointerId); onPlane(ev, true); });
  cv.addEventListener("pointermove", (ev) => { if (state.dragging) onPlane(ev, false); });
  cv.addEventListener("pointerup", () => { state.dragging = false; });
  setCode(info.plane.mean.slice());
  document.body.dataset.ready = "1";
}

main();
