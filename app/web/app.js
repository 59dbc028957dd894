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
// Two canvases of the same size, stacked: the sketch (black on white), and over it a transparent layer of color
// hints. The top one takes the pointer; the tool decides which canvas a stroke lands on.

const canvas = $("sketch");
const context = canvas.getContext("2d");
const hintCanvas = $("hints");
const hintContext = hintCanvas.getContext("2d", { willReadFrequently: true });
const HINT_TOOLS = new Set(["brush", "hint-eraser"]);
const TOOL_NAMES = { pen: "pen", eraser: "sketch eraser", brush: "color brush", "hint-eraser": "hint eraser" };
const drawing = { tool: "pen", active: false, last: null };
let uploadedFile = null;  // sent as is, unless the user draws over it
let uploadedBox = null;  // where its preview lies on the canvas, and its own size: the hints are sent at that size
let sketchDrawn = false;

function clearCanvas() {
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  uploadedFile = null;
  uploadedBox = null;
  sketchDrawn = false;
  $("sketch-caption").textContent = "Your sketch";
}

function canvasPoint(event) {
  const box = hintCanvas.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) / box.width) * canvas.width,
    y: ((event.clientY - box.top) / box.height) * canvas.height,
  };
}

function strokeTo(point) {
  const hint = HINT_TOOLS.has(drawing.tool);
  const target = hint ? hintContext : context;
  const size = Number($(hint ? "hint-size" : "brush-size").value) * (canvas.width / 256);
  if (hint) {  // the hint eraser takes hint pixels away and leaves the sketch below alone
    target.globalCompositeOperation = drawing.tool === "brush" ? "source-over" : "destination-out";
    target.strokeStyle = drawing.tool === "brush" ? hintColor() : "#000000";
    target.lineWidth = drawing.tool === "brush" ? size : size * 1.5;
  } else {
    target.strokeStyle = drawing.tool === "pen" ? "#000000" : "#ffffff";
    target.lineWidth = drawing.tool === "pen" ? size : size * 4;
  }
  target.lineCap = "round";
  target.lineJoin = "round";
  target.beginPath();
  target.moveTo(drawing.last.x, drawing.last.y);
  target.lineTo(point.x + 0.01, point.y);
  target.stroke();
  drawing.last = point;
}

hintCanvas.addEventListener("pointerdown", (event) => {
  hintCanvas.setPointerCapture(event.pointerId);
  drawing.active = true;
  drawing.last = canvasPoint(event);
  if (HINT_TOOLS.has(drawing.tool)) {
    cancelRecolor();  // the debounce counts from the end of the last stroke
    saveHintsForUndo();
  } else {
    sketchDrawn = true;
    if (uploadedFile) {  // drawing over an upload: send the canvas from now on
      uploadedFile = null;
      uploadedBox = null;
      $("sketch-caption").textContent = "Your sketch (edited upload)";
    }
  }
  strokeTo(drawing.last);
});
hintCanvas.addEventListener("pointermove", (event) => {
  if (drawing.active) strokeTo(canvasPoint(event));
});
for (const name of ["pointerup", "pointercancel"]) {
  hintCanvas.addEventListener(name, () => {
    if (!drawing.active) return;
    drawing.active = false;
    if (HINT_TOOLS.has(drawing.tool)) hintsChanged();
  });
}

const TOOL_BUTTONS = { pen: "tool-pen", eraser: "tool-eraser", brush: "tool-brush", "hint-eraser": "tool-hint-eraser" };

function selectTool(tool) {
  drawing.tool = tool;
  for (const [name, id] of Object.entries(TOOL_BUTTONS)) {
    $(id).classList.toggle("active", name === tool);
    $(id).setAttribute("aria-pressed", String(name === tool));
  }
  $("canvas-stack").dataset.tool = tool;
  $("tool-caption").textContent = `Tool: ${TOOL_NAMES[tool]}`;
  updateHintNote();
}
for (const [name, id] of Object.entries(TOOL_BUTTONS)) $(id).addEventListener("click", () => selectTool(name));
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
    const x = (canvas.width - width) / 2;
    const y = (canvas.height - height) / 2;
    context.drawImage(bitmap, x, y, width, height);
    if (uploadedFile === file) {
      uploadedBox = { x, y, width, height, naturalWidth: bitmap.width, naturalHeight: bitmap.height };
    }
  } catch (_) {
    // Say so at once: this browser reads every format the server takes, so the server will refuse it too.
    $("sketch-caption").textContent = `Chosen: ${file.name} (not an image)`;
    show($("colorize-error"), `${file.name} is not an image: choose a PNG, JPEG, WebP, BMP or GIF sketch.`);
  }
});

// ------------------------------------------------------------------------------------ Color hints
// Strokes of color on the hint layer; the model spreads each color into the region around it. Sent with the sketch
// as multipart field `hints`: an RGBA PNG of the sketch's size whose alpha marks the hint pixels.

const HINT_COLORS = [
  ["red", "#e53935"], ["orange", "#fb8c00"], ["yellow", "#fdd835"], ["green", "#43a047"],
  ["blue", "#1e88e5"], ["purple", "#8e24aa"], ["skin", "#f1c27d"], ["brown", "#6d4c41"],
];
const UNDO_STEPS = 30;
const hintUndo = [];  // the hint layer before each stroke or clear, newest last
let hintsEmpty = true;

function hintColor() {
  return $("hint-color").value;
}

function setHintColor(color, { select = true } = {}) {
  $("hint-color").value = color;
  $("tool-brush").style.setProperty("--hint", color);
  for (const swatch of $("swatches").children) {
    swatch.setAttribute("aria-pressed", String(swatch.dataset.color === color));
  }
  if (select) selectTool("brush");
}

$("swatches").append(...HINT_COLORS.map(([name, color]) => {
  const swatch = document.createElement("button");
  swatch.type = "button";
  swatch.className = "swatch";
  swatch.style.background = color;
  swatch.dataset.color = color;
  swatch.dataset.testid = `swatch-${name}`;
  swatch.title = name;
  swatch.setAttribute("aria-label", `${name} hint color`);
  swatch.setAttribute("aria-pressed", "false");
  swatch.addEventListener("click", () => setHintColor(color));
  return swatch;
}));
$("hint-color").addEventListener("input", () => setHintColor(hintColor()));

function hintPixels() {
  return hintContext.getImageData(0, 0, hintCanvas.width, hintCanvas.height);
}

function saveHintsForUndo() {
  hintUndo.push(hintPixels());
  hintUndo.splice(0, Math.max(0, hintUndo.length - UNDO_STEPS));
}

function hintsChanged() {  // after a stroke, an undo, a clear or the toggle: look again, and colorize again
  const alpha = hintPixels().data;
  hintsEmpty = true;
  for (let i = 3; i < alpha.length; i += 4) {
    if (alpha[i] > 0) { hintsEmpty = false; break; }
  }
  $("hint-undo").disabled = !hintUndo.length;
  updateHintNote();
  scheduleRecolor();
}

function undoHint() {
  if (!hintUndo.length) return;
  hintContext.putImageData(hintUndo.pop(), 0, 0);
  hintsChanged();
}

$("hint-undo").addEventListener("click", undoHint);
$("hint-clear").addEventListener("click", () => {
  if (hintsEmpty) return;
  saveHintsForUndo();
  hintContext.clearRect(0, 0, hintCanvas.width, hintCanvas.height);
  hintsChanged();
});
$("hints-on").addEventListener("change", () => {
  $("canvas-stack").classList.toggle("hints-off", !$("hints-on").checked);
  if (!hintsEmpty) scheduleRecolor();
  updateHintNote();
});
document.addEventListener("keydown", (event) => {  // Ctrl+Z (Cmd+Z) undoes a hint stroke, outside text fields
  if (!(event.ctrlKey || event.metaKey) || event.shiftKey || event.key.toLowerCase() !== "z") return;
  if (event.target.closest("input, select, textarea") || !hintUndo.length) return;
  event.preventDefault();
  undoHint();
});

let lastModels = null;  // the last GET /models answer: which versions accept hints

function chosenVersion() {
  if (!lastModels) return null;
  const choice = $("model-choice").value;
  if (!choice) return lastModels.active_version;
  if (/^[0-9]+$/.test(choice)) return Number(choice);
  return (lastModels.policy.labels || {})[choice] ?? null;
}

// true or false from GET /models; null when unknown (an older server): then the hints are sent and the server says.
function versionTakesHints() {
  const number = chosenVersion();
  const entry = lastModels && lastModels.versions.find((version) => version.version === number);
  return entry && typeof entry.hints === "boolean" ? entry.hints : null;
}

function updateHintNote() {
  const using = HINT_TOOLS.has(drawing.tool) || !hintsEmpty;
  const ignored = using && $("hints-on").checked && versionTakesHints() === false;
  show($("hint-note"), ignored
    ? `Model version ${chosenVersion()} ignores hints — train with hints on to use them. Your hints are kept but not sent.`
    : "");
}
$("model-choice").addEventListener("change", updateHintNote);

function sendsHints() {
  return $("hints-on").checked && !hintsEmpty && versionTakesHints() !== false;
}

function hintsBlob() {  // the hint layer at the size of the sketch that is sent
  let layer = hintCanvas;
  if (uploadedFile && uploadedBox) {  // the upload is sent as is: its part of the layer, at its own size
    layer = document.createElement("canvas");
    layer.width = uploadedBox.naturalWidth;
    layer.height = uploadedBox.naturalHeight;
    layer.getContext("2d").drawImage(hintCanvas, uploadedBox.x, uploadedBox.y, uploadedBox.width,
      uploadedBox.height, 0, 0, layer.width, layer.height);
  }
  return new Promise((resolve) => layer.toBlob(resolve, "image/png"));
}

// --------------------------------------------------------------------------------------- Colorize
// Painting hints colorizes again RECOLOR_DELAY_MS after the last stroke ends, once there is something to colorize.
// One request at a time: a change while one is out sends the latest state when it is back.

const RECOLOR_DELAY_MS = 400;
const recolor = { timer: null, inFlight: false, pending: false, done: false };

function cancelRecolor() {
  clearTimeout(recolor.timer);
  recolor.timer = null;
}

function scheduleRecolor() {
  if (!(recolor.done || uploadedFile || sketchDrawn)) return;
  cancelRecolor();
  recolor.timer = setTimeout(() => {
    recolor.timer = null;
    colorize({ auto: true });
  }, RECOLOR_DELAY_MS);
}

function canvasBlob() {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

let resultUrl = null;

async function colorize({ auto = false } = {}) {
  if (recolor.inFlight) {
    recolor.pending = true;
    return;
  }
  cancelRecolor();
  recolor.inFlight = true;
  const button = $("colorize");
  button.disabled = true;
  show($("colorize-error"), "");
  $("result-caption").textContent = "Colorizing…";
  const started = performance.now();
  try {
    const form = new FormData();
    if (uploadedFile) form.append("file", uploadedFile, uploadedFile.name);
    else form.append("file", await canvasBlob(), "sketch.png");
    const withHints = sendsHints();
    if (withHints) form.append("hints", await hintsBlob(), "hints.png");
    const query = new URLSearchParams({ size: $("result-size").value });
    if ($("model-choice").value) query.set("version", $("model-choice").value);
    const response = await api(`colorize?${query}`, { method: "POST", body: form, auth: false });
    const version = response.headers.get("X-Model-Version");
    const dimensions = response.headers.get("X-Image-Size") || "";
    const image = await response.blob();
    resultUrl = URL.createObjectURL(image);  // kept while it is in the history
    const milliseconds = Math.round(performance.now() - started);
    const caption = `${dimensions} · model version ${version}${withHints ? " · with hints" : ""} · ${milliseconds} ms`;
    const stem = uploadedFile ? uploadedFile.name.replace(/\.[^.]*$/, "") : "sketch";
    const entry = { url: resultUrl, name: `${stem}-colored-v${version}-${dimensions}.png`,
                    caption, version, dimensions, auto };
    remember(entry);
    showResult(entry);
    recolor.done = true;
  } catch (error) {
    $("result-caption").textContent = "\u00a0";
    show($("colorize-error"), `Could not colorize: ${error.message}`);
  } finally {
    button.disabled = false;
    recolor.inFlight = false;
    if (recolor.pending) {  // changed meanwhile: send the latest state now (or when the stroke under way ends)
      recolor.pending = false;
      if (drawing.active) scheduleRecolor();
      else colorize({ auto: true });
    }
  }
}
$("colorize").addEventListener("click", () => colorize());

// The last few results stay at hand: a click shows one again (and offers it for download). Results of painting
// hints replace each other in the history, so that a few strokes do not push everything else out.
const HISTORY_SIZE = 6;
const history = [];

function remember(entry) {
  if (entry.auto && history.length && history[0].auto) URL.revokeObjectURL(history.shift().url);
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
    lastModels = models;
    renderModels(models);
    updateHintNote();
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
setHintColor(HINT_COLORS[0][1], { select: false });
selectTool("pen");
refreshModelStatus();
loadDatasets();
refreshJobs();
setInterval(() => {
  if (document.hidden) return;
  refreshModelStatus();
  refreshJobs();
  if (datasetsImporting) loadDatasets();
}, JOBS_REFRESH_MS);
