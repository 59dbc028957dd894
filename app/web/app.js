// sketch2color page: draw or upload a sketch and colorize it; follow and launch training jobs.
// Plain JavaScript, no build step. Every API call goes through `api()`, which turns an error answer
// ({"detail": ...}) into an Error whose message shows the status and the detail.
"use strict";

const TOKEN_KEY = "sketch2color.apiToken";
const JOBS_REFRESH_MS = 3000;
const ACTIVE_STATES = new Set(["queued", "running", "cancelling"]);

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {  // FastAPI validation errors
    return detail.map((item) => `${(item.loc || []).join(".")}: ${item.msg}`).join("; ");
  }
  return JSON.stringify(detail);
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = localStorage.getItem(TOKEN_KEY);
  if (token && options.auth !== false) headers.set("Authorization", `Bearer ${token}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    throw new ApiError("network", `the server cannot be reached (${error.message})`);
  }
  if (!response.ok) {
    let detail = response.statusText || "request failed";
    try {
      const body = await response.json();
      if (body && body.detail !== undefined) detail = describeDetail(body.detail);
    } catch (_) { /* not JSON: keep the status text */ }
    if (response.status === 401) detail += " (enter the API token in the Training panel)";
    throw new ApiError(response.status, detail);
  }
  return response;
}

function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

// ----------------------------------------------------------------------------------------- Drawing

const canvas = $("sketch");
const context = canvas.getContext("2d");
const drawing = { tool: "pen", active: false, last: null };
let uploadedFile = null;  // sent as is, unless the user draws over it

function clearCanvas() {
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  uploadedFile = null;
  $("sketch-caption").textContent = "Your sketch";
}

function canvasPoint(event) {
  const box = canvas.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) / box.width) * canvas.width,
    y: ((event.clientY - box.top) / box.height) * canvas.height,
  };
}

function strokeTo(point) {
  const size = Number($("brush-size").value) * (canvas.width / 256);
  context.strokeStyle = drawing.tool === "pen" ? "#000000" : "#ffffff";
  context.lineWidth = drawing.tool === "pen" ? size : size * 4;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.beginPath();
  context.moveTo(drawing.last.x, drawing.last.y);
  context.lineTo(point.x + 0.01, point.y);
  context.stroke();
  drawing.last = point;
}

canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  drawing.active = true;
  drawing.last = canvasPoint(event);
  if (uploadedFile) {  // drawing over an upload: send the canvas from now on
    uploadedFile = null;
    $("sketch-caption").textContent = "Your sketch (edited upload)";
  }
  strokeTo(drawing.last);
});
canvas.addEventListener("pointermove", (event) => {
  if (drawing.active) strokeTo(canvasPoint(event));
});
for (const name of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(name, () => { drawing.active = false; });
}

function selectTool(tool) {
  drawing.tool = tool;
  for (const [name, button] of [["pen", $("tool-pen")], ["eraser", $("tool-eraser")]]) {
    button.classList.toggle("active", name === tool);
    button.setAttribute("aria-pressed", String(name === tool));
  }
}
$("tool-pen").addEventListener("click", () => selectTool("pen"));
$("tool-eraser").addEventListener("click", () => selectTool("eraser"));
$("clear").addEventListener("click", clearCanvas);

$("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";  // choosing the same file again still fires "change"
  if (!file) return;
  show($("colorize-error"), "");
  clearCanvas();
  uploadedFile = file;
  $("sketch-caption").textContent = `Uploaded: ${file.name}`;
  try {  // a preview, padded with white like the server does; the file itself is what gets sent
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
    const width = bitmap.width * scale;
    const height = bitmap.height * scale;
    context.drawImage(bitmap, (canvas.width - width) / 2, (canvas.height - height) / 2, width, height);
  } catch (_) {
    // Say so at once: this browser reads every format the server takes, so the server will refuse it too.
    $("sketch-caption").textContent = `Chosen: ${file.name} (not an image)`;
    show($("colorize-error"), `${file.name} is not an image: choose a PNG, JPEG, WebP, BMP or GIF sketch.`);
  }
});

// --------------------------------------------------------------------------------------- Colorize

function canvasBlob() {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

let resultUrl = null;

async function colorize() {
  const button = $("colorize");
  button.disabled = true;
  show($("colorize-error"), "");
  $("result-caption").textContent = "Colorizing…";
  const started = performance.now();
  try {
    const form = new FormData();
    if (uploadedFile) form.append("file", uploadedFile, uploadedFile.name);
    else form.append("file", await canvasBlob(), "sketch.png");
    const query = new URLSearchParams({ size: $("result-size").value });
    if ($("model-choice").value) query.set("version", $("model-choice").value);
    const response = await api(`colorize?${query}`, { method: "POST", body: form, auth: false });
    const version = response.headers.get("X-Model-Version");
    const dimensions = response.headers.get("X-Image-Size") || "";
    const image = await response.blob();
    resultUrl = URL.createObjectURL(image);  // kept while it is in the history
    const milliseconds = Math.round(performance.now() - started);
    const caption = `${dimensions} · model version ${version} · ${milliseconds} ms`;
    const stem = uploadedFile ? uploadedFile.name.replace(/\.[^.]*$/, "") : "sketch";
    const entry = { url: resultUrl, name: `${stem}-colored-v${version}-${dimensions}.png`,
                    caption, version, dimensions };
    remember(entry);
    showResult(entry);
  } catch (error) {
    $("result-caption").textContent = "\u00a0";
    show($("colorize-error"), `Could not colorize: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}
$("colorize").addEventListener("click", colorize);

// The last few results stay at hand: a click shows one again (and offers it for download).
const HISTORY_SIZE = 6;
const history = [];

function remember(entry) {
  history.unshift(entry);
  for (const old of history.splice(HISTORY_SIZE)) URL.revokeObjectURL(old.url);
  $("history").replaceChildren(...history.map((item) => {
    const button = document.createElement("button");
    button.type = "button";
    button.title = item.caption;
    const thumb = document.createElement("img");
    thumb.src = item.url;
    thumb.alt = `result of model version ${item.version}, ${item.dimensions}`;
    button.append(thumb);
    button.addEventListener("click", () => showResult(item));
    return button;
  }));
}

function showResult(entry) {
  const result = $("result");
  result.src = entry.url;
  result.hidden = false;
  result.dataset.version = entry.version;
  result.dataset.size = entry.dimensions;
  $("result-placeholder").hidden = true;
  $("result-caption").textContent = entry.caption;
  const download = $("download");
  download.href = entry.url;
  download.download = entry.name;
  download.hidden = false;
}

async function refreshModelStatus() {
  const pill = $("model-status");
  try {
    const models = await (await api("models", { auth: false })).json();
    const active = models.active_version;
    pill.textContent = active ? `model version ${active}` : (models.loading_version ? "loading a model…" : "no model yet");
    pill.classList.toggle("ready", Boolean(active));
    renderModels(models);
  } catch (error) {
    pill.textContent = `models: ${error.message}`;
    pill.classList.remove("ready");
  }
}

// ----------------------------------------------------------------------------------------- Models

function renderModels(models) {  // GET /models: {active_version, policy: {served, labels}, problem, versions}
  const policy = models.policy || { served: "latest", labels: {} };
  const served = models.active_version;
  $("policy-line").textContent = (policy.served === "latest"
    ? `Serving the newest version that passed the quality gate${served ? ` (version ${served})` : ""}.`
    : `Pinned: serving version ${policy.served}.`) + (models.problem ? ` ${models.problem}` : "");
  $("back-to-latest").hidden = policy.served === "latest";
  const body = $("models-body");
  body.replaceChildren(...models.versions.map((version) => modelRow(version, served)));
  if (!models.versions.length) {
    body.append(emptyRow("No published versions yet: train one below.", 9));
  }
  const choice = $("model-choice");
  const chosen = choice.value;
  const options = [new Option("served version", "")];
  for (const [label, number] of Object.entries(policy.labels)) options.push(new Option(`${label} (version ${number})`, label));
  for (const version of models.versions) options.push(new Option(`version ${version.version}`, String(version.version)));
  choice.replaceChildren(...options);
  choice.value = options.some((option) => option.value === chosen) ? chosen : "";
}

function modelRow(version, served) {
  const row = document.createElement("tr");
  row.dataset.version = version.version;
  if (version.version === served) row.classList.add("selected");
  const name = document.createElement("span");
  name.textContent = `${version.version}${version.version === served ? " · served" : ""}`;
  let sample = "–";
  if (version.has_sample) {
    sample = document.createElement("img");
    sample.className = "thumb";
    sample.alt = `sample of version ${version.version}`;
    sample.src = `models/${version.version}/sample.png`;
  }
  const val = version.val || {};
  const gate = document.createElement("span");
  if (version.gate) {
    gate.textContent = version.gate.passed ? "passed" : "held back";
    gate.className = `state ${version.gate.passed ? "succeeded" : "failed"}`;
    gate.title = version.gate.reason;
  } else {
    gate.textContent = "–";
  }
  const actions = document.createElement("span");
  if (version.version !== served) {
    actions.append(actionButton("Serve", () => changeModels("models/active", "PUT", { version: version.version })));
    if (!version.labels.length) {
      actions.append(actionButton("Delete", () => changeModels(`models/${version.version}`, "DELETE")));
    }
  }
  row.append(
    cell(name), cell(sample), cell(version.dataset ?? "–"), cell(val.l1 !== undefined ? val.l1.toFixed(4) : "–"),
    cell(val.psnr !== undefined ? val.psnr.toFixed(2) : "–"), cell(gate), cell(version.labels.join(", ") || "–"),
    cell(version.created ? version.created.replace("T", " ").replace("+00:00", " UTC") : "–"), cell(actions),
  );
  if (version.error) row.title = `cannot be loaded: ${version.error}`;
  return row;
}

function actionButton(text, action) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = text;
  button.addEventListener("click", (event) => { event.stopPropagation(); action(); });
  return button;
}

async function changeModels(path, method, body) {
  show($("models-error"), "");
  try {
    await api(path, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    show($("models-error"), `Could not change the models: ${error.message}`);
  }
  refreshModelStatus();
}

$("back-to-latest").addEventListener("click", () => changeModels("models/active", "PUT", { version: "latest" }));
$("set-label").addEventListener("click", () => {
  const name = $("label-name").value.trim();
  const version = Number($("label-version").value);
  if (!name || !version) {
    show($("models-error"), "Give a label name (e.g. stable) and a version number.");
    return;
  }
  changeModels(`models/labels/${encodeURIComponent(name)}`, "PUT", { version });
});

// ------------------------------------------------------------------------------------------- Jobs

const tokenInput = $("token");
tokenInput.value = localStorage.getItem(TOKEN_KEY) || "";
tokenInput.addEventListener("change", () => {
  const token = tokenInput.value.trim();
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  loadDatasets();
  refreshJobs();
});

async function loadDatasets() {  // GET /datasets: [{name, train, val, state}, ...]
  const select = $("dataset");
  try {
    const datasets = await (await api("datasets")).json();
    const ready = datasets.filter((dataset) => (dataset.state || "ready") === "ready");
    const chosen = select.value;
    select.replaceChildren();
    for (const dataset of ready) {
      select.append(new Option(`${dataset.name} (${dataset.train} train / ${dataset.val} val)`, dataset.name));
    }
    if (!ready.length) select.append(new Option("no datasets yet: upload one above", ""));
    if (ready.some((dataset) => dataset.name === chosen)) select.value = chosen;
    await renderDatasets(datasets);
  } catch (error) {
    select.replaceChildren(new Option(`datasets unavailable — ${error.message}`, ""));
  }
}

let datasetsImporting = false;  // poll the datasets only while an import runs

async function renderDatasets(datasets) {
  datasetsImporting = datasets.some((dataset) => dataset.state === "importing");
  const body = $("datasets-body");
  const rows = [];
  for (const dataset of datasets) {
    const row = document.createElement("tr");
    row.dataset.dataset = dataset.name;
    const state = document.createElement("span");
    state.className = `state ${dataset.state === "ready" ? "succeeded" : dataset.state === "failed" ? "failed" : "running"}`;
    state.textContent = dataset.state;
    let pairs = `${dataset.train} train / ${dataset.val} val`;
    let preview = "–";
    if (dataset.state !== "ready") {
      try {
        const detail = await (await api(`datasets/${encodeURIComponent(dataset.name)}`)).json();
        const progress = detail.import ? detail.import.progress : null;
        pairs = dataset.state === "failed" ? (detail.import && detail.import.error) || "failed"
          : `${progress ? progress.done : 0} / ${progress && progress.total ? progress.total : "?"} files`;
      } catch (_) { /* the row still shows the state */ }
    } else {
      const link = document.createElement("a");
      link.textContent = "show";
      link.href = "#";
      link.addEventListener("click", async (event) => {
        event.preventDefault();
        const image = await (await api(`datasets/${encodeURIComponent(dataset.name)}/preview.png`)).blob();
        const img = document.createElement("img");
        img.className = "preview";
        img.alt = `pairs of ${dataset.name}`;
        img.src = URL.createObjectURL(image);
        link.replaceWith(img);
      });
      preview = link;
    }
    const actions = document.createElement("span");
    if (dataset.state !== "importing") {
      actions.append(actionButton("Delete", async () => {
        try {
          await api(`datasets/${encodeURIComponent(dataset.name)}`, { method: "DELETE" });
        } catch (error) {
          show($("datasets-error"), `Could not delete ${dataset.name}: ${error.message}`);
        }
        loadDatasets();
      }));
    }
    row.append(cell(dataset.name), cell(state), cell(pairs), cell(preview), cell(actions));
    rows.push(row);
  }
  body.replaceChildren(...rows);
  if (!rows.length) {
    body.append(emptyRow("No datasets yet: upload a zip above.", 5));
  }
}

// The upload itself goes through XMLHttpRequest: fetch() cannot report upload progress.
$("dataset-upload").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const bar = $("upload-progress");
  show($("datasets-error"), "");
  show($("datasets-message"), "");
  const request = new XMLHttpRequest();
  request.open("POST", "datasets");
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) request.setRequestHeader("Authorization", `Bearer ${token}`);
  request.upload.addEventListener("progress", (progress) => {
    if (progress.lengthComputable) bar.value = (100 * progress.loaded) / progress.total;
  });
  request.addEventListener("load", () => {
    bar.hidden = true;
    let answer = {};
    try { answer = JSON.parse(request.responseText); } catch (_) { /* keep the status */ }
    if (request.status === 202) {
      show($("datasets-message"), `Uploaded ${form.get("name")}: importing…`);
      event.target.reset();
    } else {
      const detail = answer.detail !== undefined ? describeDetail(answer.detail) : request.statusText;
      show($("datasets-error"), `Upload refused (${request.status}): ${detail}`);
    }
    loadDatasets();
  });
  request.addEventListener("error", () => {
    bar.hidden = true;
    show($("datasets-error"), "Upload failed: the server cannot be reached");
  });
  bar.value = 0;
  bar.hidden = false;
  request.send(form);
});

function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

function emptyRow(text, columns) {  // the one row a table shows when it has nothing to list
  const row = document.createElement("tr");
  row.className = "empty";
  const td = cell(text);
  td.colSpan = columns;
  row.append(td);
  return row;
}

function cell(content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  return td;
}

let selectedJob = null;

function jobRow(job) {
  const progress = job.progress || {};
  const row = document.createElement("tr");
  row.className = "job" + (job.id === selectedJob ? " selected" : "");
  row.dataset.jobId = job.id;
  const id = document.createElement("code");
  id.textContent = String(job.id).slice(0, 8);
  id.title = job.id;
  const state = document.createElement("span");
  state.className = `state ${job.state}`;
  state.textContent = job.state;
  if (job.error) state.title = job.error;
  const total = progress.total_steps;
  const step = progress.step ?? 0;
  const bar = document.createElement("span");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = total ? `${Math.min(100, (100 * step) / total)}%` : "0%";
  bar.append(fill);
  const progressCell = document.createElement("span");
  progressCell.append(bar, `${step} / ${total ?? "?"}`);
  const rate = progress.images_per_second;
  const actions = document.createElement("span");
  if (ACTIVE_STATES.has(job.state) && job.state !== "cancelling") {
    actions.append(actionButton("Cancel", () => jobAction(job.id, "cancel", "POST")));
  }
  if (job.state === "cancelled" || job.state === "failed") {
    actions.append(actionButton("Resume", () => jobAction(job.id, "resume", "POST")));
  }
  if (!ACTIVE_STATES.has(job.state)) {
    actions.append(actionButton("Delete", () => jobAction(job.id, "", "DELETE")));
  }
  row.append(
    cell(id), cell(job.dataset ?? "–"), cell(state), cell(progressCell),
    cell(ACTIVE_STATES.has(job.state) ? formatSeconds(progress.eta_seconds) : "–"),
    cell(rate ? rate.toFixed(1) : "–"), cell(progress.version ?? "–"), cell(actions),
  );
  row.addEventListener("click", () => { selectedJob = job.id; refreshJobs(); });
  return row;
}

let lastJobs = [];

// How long the form's job would take, from the newest speed a job measured here. A step's work grows with
// the square of the width (ngf and ndf), so a speed measured at another width is scaled by that.
function updateEstimate() {
  const form = new FormData($("launch"));
  const steps = Number(form.get("steps"));
  const batch = Number(form.get("batch_size"));
  const width = Number(form.get("ngf"));
  const measured = lastJobs.find((job) => job.progress && job.progress.images_per_second > 0);
  const line = $("launch-estimate");
  if (!steps || !batch || !width) { line.textContent = ""; return; }
  if (!measured) {
    line.textContent = "No speed measured on this server yet: the first job's progress shows its speed and ETA.";
    return;
  }
  const measuredWidth = measured.params.ngf;
  const speed = measured.progress.images_per_second * (measuredWidth / width) ** 2;
  const seconds = (steps * batch) / speed;
  line.textContent = `Expect about ${formatSeconds(seconds)} on this server (${speed.toFixed(1)} images/s at ` +
    `width ${width}, from job ${String(measured.id).slice(0, 8)}'s ${measured.progress.images_per_second.toFixed(1)} ` +
    `images/s at width ${measuredWidth}).`;
}
$("launch").addEventListener("input", updateEstimate);

async function refreshJobs() {
  const body = $("jobs-body");
  try {
    const jobs = await (await api("jobs")).json();  // job records, newest first
    show($("jobs-error"), "");
    body.replaceChildren(...jobs.map(jobRow));
    if (!jobs.length) {
      body.append(emptyRow("No jobs yet: launch one above.", 8));
    }
    lastJobs = jobs;
    updateEstimate();
    if (!selectedJob && jobs.length) selectedJob = jobs[0].id;
    if (selectedJob) await drawChart(selectedJob);
  } catch (error) {
    show($("jobs-error"), `Jobs unavailable — ${error.message}`);
  }
}

async function jobAction(jobId, action, method) {
  const path = `jobs/${encodeURIComponent(jobId)}` + (action ? `/${action}` : "");
  try {
    await api(path, { method });
    if (method === "DELETE" && selectedJob === jobId) selectedJob = null;
  } catch (error) {
    show($("jobs-error"), `Could not ${action || "delete"} the job: ${error.message}`);
  }
  refreshJobs();
}

$("launch").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const request = {
    dataset: form.get("dataset"),
    steps: Number(form.get("steps")),
    batch_size: Number(form.get("batch_size")),
    ngf: Number(form.get("ngf")),
    ndf: Number(form.get("ngf")),  // one width for both networks, as the estimate assumes
  };
  const message = $("launch-message");
  show(message, "");
  try {
    const job = await (await api("jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    })).json();
    selectedJob = job.id;
    show(message, `Launched job ${String(job.id).slice(0, 8)} (${job.state}).`);
    show($("jobs-error"), "");
  } catch (error) {
    show($("jobs-error"), `Could not launch: ${error.message}`);
  }
  refreshJobs();
});

// ---------------------------------------------------------------------------------- Loss chart

const SERIES = [
  { key: "gen_gan", label: "generator GAN", color: "#3158d8" },
  { key: "gen_l1", label: "generator L1", color: "#e07b00" },
  { key: "disc", label: "discriminator", color: "#177245" },
  { key: "val_l1", label: "val L1", color: "#b42318" },
];

function svg(name, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

async function drawChart(jobId) {
  const panel = $("chart-panel");
  const chart = $("chart");
  panel.hidden = false;
  $("chart-title").textContent = `Losses of job ${String(jobId).slice(0, 8)}`;
  let points;
  try {
    points = (await (await api(`jobs/${encodeURIComponent(jobId)}/metrics`)).json()).metrics;
    show($("chart-error"), "");
  } catch (error) {
    show($("chart-error"), `Metrics unavailable — ${error.message}`);
    chart.replaceChildren();
    return;
  }
  const width = 640, height = 240, left = 48, right = 170, top = 12, bottom = 28;
  const plotted = SERIES.map((series) => ({
    ...series,
    points: points.filter((p) => Number.isFinite(p[series.key]) && p[series.key] > 0 && Number.isFinite(p.step))
      .map((p) => [p.step, p[series.key]]),
  })).filter((series) => series.points.length);
  chart.replaceChildren();
  if (!plotted.length) {
    chart.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "No metrics logged yet."));
    return;
  }
  // Losses differ by orders of magnitude (L1 vs GAN terms), so the y axis is logarithmic.
  const all = plotted.flatMap((series) => series.points);
  const steps = all.map(([step]) => step);
  const logs = all.map(([, value]) => Math.log10(value));
  const minStep = Math.min(...steps), maxStep = Math.max(...steps, minStep + 1);
  const minLog = Math.floor(Math.min(...logs) * 2) / 2, maxLog = Math.max(Math.ceil(Math.max(...logs) * 2) / 2, minLog + 0.5);
  const x = (step) => left + ((step - minStep) / (maxStep - minStep)) * (width - left - right);
  const y = (value) => top + (1 - (Math.log10(value) - minLog) / (maxLog - minLog)) * (height - top - bottom);
  for (let exponent = Math.floor(minLog); exponent <= Math.ceil(maxLog); exponent += 1) {
    for (const mantissa of maxLog - minLog > 2 ? [1] : [1, 2, 5]) {
      const value = mantissa * 10 ** exponent;
      if (Math.log10(value) < minLog - 1e-9 || Math.log10(value) > maxLog + 1e-9) continue;
      const label = Number(value.toPrecision(1)).toString();
      chart.append(svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), stroke: "#e6e9f0" }));
      chart.append(svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end" }, label));
    }
  }
  chart.append(svg("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, stroke: "#b9c1d3" }));
  chart.append(svg("text", { x: left, y: height - 8 }, `step ${minStep}`));
  chart.append(svg("text", { x: width - right, y: height - 8, "text-anchor": "end" }, `step ${maxStep}`));
  plotted.forEach((series, index) => {
    const path = series.points.map(([step, value], i) => `${i ? "L" : "M"}${x(step).toFixed(1)},${y(value).toFixed(1)}`);
    chart.append(svg("path", { d: path.join(" "), fill: "none", stroke: series.color, "stroke-width": 1.8 }));
    const legendY = top + 14 + index * 18;
    chart.append(svg("line", { x1: width - right + 12, x2: width - right + 30, y1: legendY - 4, y2: legendY - 4,
      stroke: series.color, "stroke-width": 3 }));
    const last = series.points[series.points.length - 1][1];
    chart.append(svg("text", { x: width - right + 36, y: legendY }, `${series.label} ${last.toPrecision(3)}`));
  });
}

// ----------------------------------------------------------------------------------------- Start

clearCanvas();
refreshModelStatus();
loadDatasets();
refreshJobs();
setInterval(() => {
  if (document.hidden) return;
  refreshModelStatus();
  refreshJobs();
  if (datasetsImporting) loadDatasets();
}, JOBS_REFRESH_MS);
