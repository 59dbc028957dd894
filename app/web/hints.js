// Color hints: strokes and dots of color on the hint layer. With fill=regions each fills the region of the drawing it
// touches; with fill=soft the model spreads it around. Sent with the sketch as multipart field `hints`: an RGBA PNG
// of the sketch's size whose alpha marks the hint pixels. The eyedropper takes a hint color from the result.

import { scheduleRecolor } from "./colorize.js";
import { $, show } from "./dom.js";
import { hintCanvas, hintContext, isHintTool, selectTool } from "./sketch.js";
import { state } from "./state.js";

export const HINT_COLORS = [
  ["red", "#e53935"], ["orange", "#fb8c00"], ["yellow", "#fdd835"], ["green", "#43a047"],
  ["blue", "#1e88e5"], ["purple", "#8e24aa"], ["skin", "#f1c27d"], ["brown", "#6d4c41"],
];
const UNDO_STEPS = 30;
const { hints } = state;

export function hintColor() {
  return $("hint-color").value;
}

export function setHintColor(color, { select = true } = {}) {
  $("hint-color").value = color;
  for (const id of ["tool-brush", "tool-bucket"]) $(id).style.setProperty("--hint", color);
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

function resultColorAt(event) {  // "#rrggbb" of the result pixel under the pointer, or null off the picture
  const image = $("result");
  const box = image.getBoundingClientRect();
  const { naturalWidth: width, naturalHeight: height } = image;
  const scale = Math.min(box.width / width, box.height / height);  // object-fit: contain, centered
  const x = Math.floor((event.clientX - box.left - (box.width - width * scale) / 2) / scale);
  const y = Math.floor((event.clientY - box.top - (box.height - height * scale) / 2) / scale);
  if (!(x >= 0 && y >= 0 && x < width && y < height)) return null;
  const pixel = document.createElement("canvas");
  pixel.width = pixel.height = 1;
  const context = pixel.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.drawImage(image, x, y, 1, 1, 0, 0, 1, 1);
  const [red, green, blue] = context.getImageData(0, 0, 1, 1).data;
  return `#${[red, green, blue].map((value) => value.toString(16).padStart(2, "0")).join("")}`;
}

$("result").addEventListener("click", (event) => {
  if (state.drawing.tool !== "eyedropper") return;
  const color = resultColorAt(event);
  if (!color) return;
  setHintColor(color, { select: false });
  selectTool(state.drawing.previous);
});

function hintPixels() {
  return hintContext.getImageData(0, 0, hintCanvas.width, hintCanvas.height);
}

export function saveHintsForUndo() {
  hints.undo.push(hintPixels());
  hints.undo.splice(0, Math.max(0, hints.undo.length - UNDO_STEPS));
}

export function hintsChanged() {  // after a stroke, an undo, a clear or the toggle: look again, and colorize again
  const alpha = hintPixels().data;
  hints.empty = true;
  for (let i = 3; i < alpha.length; i += 4) {
    if (alpha[i] > 0) { hints.empty = false; break; }
  }
  $("hint-undo").disabled = !hints.undo.length;
  updateHintNote();
  scheduleRecolor();
}

function undoHint() {
  if (!hints.undo.length) return;
  hintContext.putImageData(hints.undo.pop(), 0, 0);
  hintsChanged();
}

$("hint-undo").addEventListener("click", undoHint);
$("hint-clear").addEventListener("click", () => {
  if (hints.empty) return;
  saveHintsForUndo();
  hintContext.clearRect(0, 0, hintCanvas.width, hintCanvas.height);
  hintsChanged();
});
$("hints-on").addEventListener("change", () => {
  $("canvas-stack").classList.toggle("hints-off", !$("hints-on").checked);
  if (!hints.empty) scheduleRecolor();
  updateHintNote();
});
document.addEventListener("keydown", (event) => {  // Ctrl+Z (Cmd+Z) undoes a hint stroke, outside text fields
  if (!(event.ctrlKey || event.metaKey) || event.shiftKey || event.key.toLowerCase() !== "z") return;
  if (event.target.closest("input, select, textarea") || !hints.undo.length) return;
  event.preventDefault();
  undoHint();
});

function chosenVersion() {
  const models = state.models;
  if (!models) return null;
  const choice = $("model-choice").value;
  if (!choice) return models.active_version;
  if (/^[0-9]+$/.test(choice)) return Number(choice);
  return (models.policy.labels || {})[choice] ?? null;
}

// true or false from GET /models; null when unknown (an older server): then the hints are sent and the server says.
function versionTakesHints() {
  const number = chosenVersion();
  const entry = state.models && state.models.versions.find((version) => version.version === number);
  return entry && typeof entry.hints === "boolean" ? entry.hints : null;
}

export function updateHintNote() {
  const using = isHintTool(state.drawing.tool) || !hints.empty;
  const ignored = using && $("hints-on").checked && versionTakesHints() === false;
  show($("hint-note"), ignored
    ? `Model version ${chosenVersion()} ignores hints — train with hints on to use them. Your hints are kept but not sent.`
    : "");
}
$("model-choice").addEventListener("change", updateHintNote);

export function sendsHints() {
  return $("hints-on").checked && !hints.empty && versionTakesHints() !== false;
}

export function hintsBlob() {  // the hint layer at the size of the sketch that is sent
  let layer = hintCanvas;
  const { file, box } = state.sketch;
  if (file && box) {  // the upload is sent as is: its part of the layer, at its own size
    layer = document.createElement("canvas");
    layer.width = box.naturalWidth;
    layer.height = box.naturalHeight;
    layer.getContext("2d").drawImage(hintCanvas, box.x, box.y, box.width, box.height, 0, 0, layer.width,
      layer.height);
  }
  return new Promise((resolve) => layer.toBlob(resolve, "image/png"));
}
