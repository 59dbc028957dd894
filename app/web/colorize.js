// Colorize: send the sketch (and the hints) to POST /colorize and show the result, with the last few results at hand.
// The Result selector gives `size` and `fill`: flat regions (a hint fills the region it touches) or soft colors.
// Painting hints colorizes again RECOLOR_DELAY_MS after the last stroke ends, once there is something to colorize.
// One request at a time: a change while one is out sends the latest state when it is back. The Colorize button's
// data-recolor says "idle" when no request is due or out, "busy" otherwise. Each result keeps what it was made from,
// so that the Download menu (download.js) can ask for the same picture as layers.
// On a phone the result lies below the sketch: a new result that is off screen is scrolled into view after the
// Colorize button, and after a stroke (the user is drawing: the page does not move) the chip "Result ready" is shown.

import { api } from "./api.js";
import { $, show } from "./dom.js";
import { offerDownloads } from "./download.js";
import { hintsBlob, sendsHints } from "./hints.js";
import { canvas } from "./sketch.js";
import { state } from "./state.js";

const RECOLOR_DELAY_MS = 400;
const HISTORY_SIZE = 6;
const { recolor, results } = state;

function recolorChanged() {
  const idle = !recolor.inFlight && recolor.timer === null && !recolor.pending;
  $("colorize").dataset.recolor = idle ? "idle" : "busy";
}

export function cancelRecolor() {
  clearTimeout(recolor.timer);
  recolor.timer = null;
  recolorChanged();
}

export function scheduleRecolor() {
  if (!(recolor.done || state.sketch.file || state.sketch.drawn)) return;
  cancelRecolor();
  recolor.timer = setTimeout(() => {
    recolor.timer = null;
    colorize({ auto: true });
  }, RECOLOR_DELAY_MS);
  recolorChanged();
}

function canvasBlob() {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

async function colorize({ auto = false } = {}) {
  if (recolor.inFlight) {
    recolor.pending = true;
    recolorChanged();
    return;
  }
  cancelRecolor();
  recolor.inFlight = true;
  recolorChanged();
  const button = $("colorize");
  button.disabled = true;
  show($("colorize-error"), "");
  $("result-caption").textContent = "Colorizing…";
  const started = performance.now();
  const upload = state.sketch.file;
  try {
    const sketch = upload || await canvasBlob();
    const sketchName = upload ? upload.name : "sketch.png";
    const hints = sendsHints() ? await hintsBlob() : null;
    const withHints = hints !== null;
    const form = new FormData();
    form.append("file", sketch, sketchName);
    if (withHints) form.append("hints", hints, "hints.png");
    const size = $("result-size").value;
    const fill = $("result-fill").value;
    const query = new URLSearchParams({ size, fill });
    if ($("model-choice").value) query.set("version", $("model-choice").value);
    const response = await api(`colorize?${query}`, { method: "POST", body: form, auth: false });
    const version = response.headers.get("X-Model-Version");
    const dimensions = response.headers.get("X-Image-Size") || "";
    const image = await response.blob();
    const url = URL.createObjectURL(image);  // kept while it is in the history
    const milliseconds = Math.round(performance.now() - started);
    const caption = `${dimensions} · model version ${version}${withHints ? " · with hints" : ""}`
      + `${fill === "soft" ? " · soft colors" : ""} · ${milliseconds} ms`;
    const stem = state.sketch.file ? state.sketch.file.name.replace(/\.[^.]*$/, "") : "sketch";
    const inputs = { sketch, sketchName, hints, size, fill };  // the version is the one that drew it
    const entry = {
      url, name: `${stem}-colored-v${version}-${dimensions}.png`, caption, version, dimensions, auto, inputs,
    };
    remember(entry);
    showResult(entry);
    bringIntoView(auto);
    recolor.done = true;
  } catch (error) {
    $("result-caption").textContent = "\u00a0";
    show($("colorize-error"), `Could not colorize: ${error.message}`);
  } finally {
    button.disabled = false;
    recolor.inFlight = false;
    if (recolor.pending) {  // changed meanwhile: send the latest state now (or when the stroke under way ends)
      recolor.pending = false;
      if (state.drawing.active) scheduleRecolor();
      else colorize({ auto: true });
    }
    recolorChanged();
  }
}
$("colorize").addEventListener("click", () => colorize());
// Once a result is shown, a change of how it is made (size, fill, model) shows it the new way at once.
for (const choice of ["result-size", "result-fill", "model-choice"]) {
  $(choice).addEventListener("change", () => {
    if (recolor.done) scheduleRecolor();
  });
}

// A click on a recent result shows it again (and offers it for download). Results of painting hints replace each
// other in the history, so that a few strokes do not push everything else out.
function remember(entry) {
  if (entry.auto && results.length && results[0].auto) URL.revokeObjectURL(results.shift().url);
  results.unshift(entry);
  for (const old of results.splice(HISTORY_SIZE)) URL.revokeObjectURL(old.url);
  $("history").replaceChildren(...results.map((item) => {
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

function resultInView() {
  const box = $("result-frame").getBoundingClientRect();
  return box.top >= -1 && box.bottom <= window.innerHeight + 1;
}

function scrollToResult() {
  const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  $("result-frame").scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "nearest" });
  $("result-chip").hidden = true;
}

function bringIntoView(auto) {
  const chip = $("result-chip");
  if (resultInView()) {
    chip.hidden = true;
  } else if (auto) {
    chip.textContent = $("result-frame").getBoundingClientRect().top < 0 ? "Result ready ↑" : "Result ready ↓";
    chip.hidden = false;
  } else {
    scrollToResult();
  }
}
$("result-chip").addEventListener("click", scrollToResult);
window.addEventListener("scroll", () => {
  if (!$("result-chip").hidden && resultInView()) $("result-chip").hidden = true;
}, { passive: true });

function showResult(entry) {
  const result = $("result");
  result.src = entry.url;
  result.hidden = false;
  result.dataset.version = entry.version;
  result.dataset.size = entry.dimensions;
  $("result-placeholder").hidden = true;
  $("result-caption").textContent = entry.caption;
  state.shown = entry;
  offerDownloads(entry);
}
