// The drawing area: two canvases of the same size, stacked: the sketch (black on white), and over it a transparent
// layer of color hints. The top one takes the pointer; the tool decides which canvas a stroke lands on. The paint
// bucket drops one small hint dot per click (with fill=regions the server fills the whole region it touches); the
// eyedropper picks from the result (hints.js) and then hands back to the tool before it.

import { cancelRecolor } from "./colorize.js";
import { $, show } from "./dom.js";
import { hintColor, hintsChanged, saveHintsForUndo, updateHintNote } from "./hints.js";
import { state } from "./state.js";

export const canvas = $("sketch");
const context = canvas.getContext("2d");
export const hintCanvas = $("hints");
export const hintContext = hintCanvas.getContext("2d", { willReadFrequently: true });
const HINT_TOOLS = new Set(["brush", "bucket", "hint-eraser"]);
const TOOL_NAMES = {
  pen: "pen", eraser: "sketch eraser", brush: "color brush", bucket: "paint bucket", eyedropper: "eyedropper",
  "hint-eraser": "hint eraser",
};
const TOOL_BUTTONS = {
  pen: "tool-pen", eraser: "tool-eraser", brush: "tool-brush", bucket: "tool-bucket", eyedropper: "tool-eyedropper",
  "hint-eraser": "tool-hint-eraser",
};
const SHORTCUTS = { p: "pen", b: "brush", g: "bucket", i: "eyedropper" };
const BUCKET_RADIUS = 4;  // canvas pixels: small enough to land inside a small shape, big enough to survive 256x256
const { sketch, drawing } = state;

export function isHintTool(tool) {
  return HINT_TOOLS.has(tool);
}

export function clearCanvas() {
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  sketch.file = null;
  sketch.box = null;
  sketch.drawn = false;
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
  const hint = isHintTool(drawing.tool);
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

function dropHint(point) {  // the paint bucket: one dot of the hint color
  hintContext.globalCompositeOperation = "source-over";
  hintContext.fillStyle = hintColor();
  hintContext.beginPath();
  hintContext.arc(point.x, point.y, BUCKET_RADIUS, 0, 2 * Math.PI);
  hintContext.fill();
}

hintCanvas.addEventListener("pointerdown", (event) => {
  if (drawing.tool === "eyedropper") return;  // it picks from the result, not from the sketch
  if (drawing.tool === "bucket") {
    cancelRecolor();
    saveHintsForUndo();
    dropHint(canvasPoint(event));
    hintsChanged();
    return;
  }
  hintCanvas.setPointerCapture(event.pointerId);
  drawing.active = true;
  drawing.last = canvasPoint(event);
  if (isHintTool(drawing.tool)) {
    cancelRecolor();  // the debounce counts from the end of the last stroke
    saveHintsForUndo();
  } else {
    sketch.drawn = true;
    if (sketch.file) {  // drawing over an upload: send the canvas from now on
      sketch.file = null;
      sketch.box = null;
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
    if (isHintTool(drawing.tool)) hintsChanged();
  });
}

export function selectTool(tool) {
  if (tool === "eyedropper" && drawing.tool !== "eyedropper") drawing.previous = drawing.tool;
  drawing.tool = tool;
  for (const [name, id] of Object.entries(TOOL_BUTTONS)) {
    $(id).classList.toggle("active", name === tool);
    $(id).setAttribute("aria-pressed", String(name === tool));
  }
  $("canvas-stack").dataset.tool = tool;
  $("result-frame").classList.toggle("picking", tool === "eyedropper");
  $("tool-caption").textContent = `Tool: ${TOOL_NAMES[tool]}`;
  updateHintNote();
}
for (const [name, id] of Object.entries(TOOL_BUTTONS)) $(id).addEventListener("click", () => selectTool(name));
document.addEventListener("keydown", (event) => {  // P, B, G, I pick a tool; Esc leaves the eyedropper
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest("input, select, textarea")) return;
  const key = event.key.toLowerCase();
  if (key === "escape" && drawing.tool === "eyedropper") selectTool(drawing.previous);
  else if (SHORTCUTS[key]) selectTool(SHORTCUTS[key]);
  else return;
  event.preventDefault();
});
$("clear").addEventListener("click", clearCanvas);

$("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";  // choosing the same file again still fires "change"
  if (!file) return;
  show($("colorize-error"), "");
  clearCanvas();
  sketch.file = file;
  $("sketch-caption").textContent = `Uploaded: ${file.name}`;
  try {  // a preview, padded with white like the server does; the file itself is what gets sent
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
    const width = bitmap.width * scale;
    const height = bitmap.height * scale;
    const x = (canvas.width - width) / 2;
    const y = (canvas.height - height) / 2;
    context.drawImage(bitmap, x, y, width, height);
    if (sketch.file === file) {
      sketch.box = { x, y, width, height, naturalWidth: bitmap.width, naturalHeight: bitmap.height };
    }
  } catch (_) {
    // Say so at once: this browser reads every format the server takes, so the server will refuse it too.
    $("sketch-caption").textContent = `Chosen: ${file.name} (not an image)`;
    show($("colorize-error"), `${file.name} is not an image: choose a PNG, JPEG, WebP, BMP or GIF sketch.`);
  }
});
