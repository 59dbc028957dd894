// <sketch-colorizer>: draw or drop a sketch, dab colors on it, colorize it with a sketch2color server, download
// the result. One module, no framework, no build step:
//
//   <script type="module" src="https://your-server/embed/sketch2color.js"></script>
//   <sketch-colorizer></sketch-colorizer>
//
// Attributes: api (the server; default: where this script came from), version (a number or a label), size
// (256 | original), fill (regions | soft), lines (keep | none), token (only for servers that want one).
// Events: `colorized` (detail: blob, version, size, url), `colorize-error` (detail: error).
// Method: colorize(blobOrCanvas?) -> Promise of the result; without an argument, the drawing and its hints.
// Theme: CSS custom properties --s2c-accent, --s2c-accent-text, --s2c-background, --s2c-foreground,
// --s2c-muted, --s2c-border, --s2c-paper, --s2c-radius, --s2c-gap, --s2c-font; parts toolbar, canvas, result,
// button, download, status.

import { Sketch2ColorClient } from "./client.js";

export * from "./client.js";

const SIDE = 512; // the drawing's size in pixels until a dropped picture sets another
const LONGEST_SIDE = 1024; // a dropped picture is scaled down to this
const PEN_WIDTH = 4;
const BRUSH_WIDTH = 12;
const DOT_RADIUS = 6; // the bucket's one dot: with fill=regions the server fills the whole region it touches
const KEY_STEP = 8;
const UNDO_DEPTH = 20;
const TOOLS = {
  pen: { label: "Pen", key: "p", title: "Pen: draw the sketch's lines (P)" },
  brush: { label: "Brush", key: "h", title: "Hint brush: paint colors where they go (H)" },
  bucket: { label: "Bucket", key: "b", title: "Bucket: one dot of color fills its shape (B)" },
};

const STYLE = `
:host { display: block; container-type: inline-size; max-width: 100%; box-sizing: border-box;
  color: var(--s2c-foreground, #1d2433); font: 14px/1.4 var(--s2c-font, system-ui, sans-serif); }
:host([hidden]), [hidden] { display: none !important; }
*, *::before, *::after { box-sizing: border-box; }
.frame { display: grid; gap: var(--s2c-gap, 12px); padding: var(--s2c-gap, 12px); min-width: 0;
  background: var(--s2c-background, #fff); border: 1px solid var(--s2c-border, #d5d9e2);
  border-radius: var(--s2c-radius, 10px); }
.toolbar, .actions { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; min-width: 0; }
button, .download { font: inherit; min-height: 36px; padding: 6px 12px; border-radius: calc(var(--s2c-radius, 10px) * 0.6);
  border: 1px solid var(--s2c-border, #d5d9e2); background: var(--s2c-background, #fff);
  color: var(--s2c-foreground, #1d2433); cursor: pointer; text-decoration: none; display: inline-flex;
  align-items: center; }
button[aria-pressed="true"] { border-color: var(--s2c-accent, #3b5bdb); box-shadow: inset 0 0 0 1px var(--s2c-accent, #3b5bdb);
  color: var(--s2c-accent, #3b5bdb); }
button.primary { background: var(--s2c-accent, #3b5bdb); border-color: var(--s2c-accent, #3b5bdb);
  color: var(--s2c-accent-text, #fff); font-weight: 600; }
button:disabled { opacity: 0.55; cursor: progress; }
button:focus-visible, .download:focus-visible, input:focus-visible, .stack:focus-visible {
  outline: 3px solid var(--s2c-accent, #3b5bdb); outline-offset: 2px; }
input[type="color"] { width: 40px; height: 36px; padding: 2px; border: 1px solid var(--s2c-border, #d5d9e2);
  border-radius: calc(var(--s2c-radius, 10px) * 0.6); background: var(--s2c-background, #fff); }
.panes { display: grid; grid-template-columns: minmax(0, 1fr); gap: var(--s2c-gap, 12px); }
@container (min-width: 560px) { .panes { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } }
.stack { position: relative; display: grid; touch-action: none; cursor: crosshair;
  border: 1px solid var(--s2c-border, #d5d9e2); border-radius: calc(var(--s2c-radius, 10px) * 0.6);
  overflow: hidden; background: var(--s2c-paper, #fff); }
.stack.dragging { outline: 3px dashed var(--s2c-accent, #3b5bdb); }
.stack canvas { grid-area: 1 / 1; width: 100%; height: auto; display: block; }
.cursor { position: absolute; width: 14px; height: 14px; margin: -7px 0 0 -7px; border-radius: 50%;
  border: 2px solid var(--s2c-accent, #3b5bdb); pointer-events: none; display: none; }
.stack:focus-visible .cursor { display: block; }
.cursor.down { background: var(--s2c-accent, #3b5bdb); }
.result { display: grid; place-items: center; min-height: 120px; border: 1px dashed var(--s2c-border, #d5d9e2);
  border-radius: calc(var(--s2c-radius, 10px) * 0.6); background: var(--s2c-paper, #fff); overflow: hidden; }
.result img { width: 100%; height: auto; display: block; }
.placeholder { margin: 12px; color: var(--s2c-muted, #667085); text-align: center; }
.status { color: var(--s2c-muted, #667085); overflow-wrap: anywhere; min-width: 0; flex: 1 1 12em; }
.status.error { color: var(--s2c-error, #b42318); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

const TEMPLATE = `
<div class="frame">
  <div class="toolbar" part="toolbar" role="group" aria-label="Drawing tools">
    ${Object.entries(TOOLS)
      .map(([tool, { label, title }]) => `<button type="button" data-tool="${tool}" title="${title}">${label}</button>`)
      .join("")}
    <input type="color" value="#e0452b" aria-label="Hint color" title="Hint color">
    <button type="button" data-action="undo" title="Undo (Ctrl+Z)">Undo</button>
    <button type="button" data-action="clear">Clear</button>
    <button type="button" data-action="open" title="Open a sketch (or drop one on the drawing)">Open…</button>
    <input type="file" accept="image/*" hidden>
  </div>
  <div class="panes">
    <div class="stack" part="canvas" tabindex="0" role="application" aria-roledescription="drawing"
      aria-label="Sketch. Draw with the mouse or a finger, or drop a picture. Keyboard: arrow keys move, Space puts the pen down or lifts it, Enter places a dot, P, H and B pick the pen, the hint brush and the bucket.">
      <canvas class="sketch"></canvas><canvas class="hints"></canvas><div class="cursor"></div>
    </div>
    <div class="result" part="result">
      <p class="placeholder">The colored picture appears here.</p>
      <img alt="Colorized sketch" hidden>
    </div>
  </div>
  <div class="actions">
    <button type="button" class="primary" data-action="colorize" part="button">Colorize</button>
    <a class="download" part="download" download="colorized.png" hidden>Download</a>
    <span class="status" part="status" role="status" aria-live="polite"></span>
  </div>
</div>`;

/** The server this script was served by: the default `api`. */
function scriptOrigin() {
  try {
    return new URL(import.meta.url).origin;
  } catch (_) {
    return "";
  }
}

export class SketchColorizer extends HTMLElement {
  static get observedAttributes() {
    return ["api", "token"];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${STYLE}</style>${TEMPLATE}`;
    const find = (selector) => root.querySelector(selector);
    this._sketch = find("canvas.sketch");
    this._hints = find("canvas.hints");
    this._stack = find(".stack");
    this._cursor = find(".cursor");
    this._color = find('input[type="color"]');
    this._file = find('input[type="file"]');
    this._image = find(".result img");
    this._placeholder = find(".placeholder");
    this._download = find(".download");
    this._status = find(".status");
    this._button = find('[data-action="colorize"]');
    this._tool = "pen";
    this._undo = [];
    this._hasHints = false;
    this._resultUrl = null;
    this._keyboard = { x: SIDE / 2, y: SIDE / 2, down: false };
    this._resize(SIDE, SIDE);
    this._bind(root);
    this._showTool();
  }

  attributeChangedCallback() {
    this._client = null; // built again from the new attributes on the next call
  }

  disconnectedCallback() {
    if (this._resultUrl) URL.revokeObjectURL(this._resultUrl);
    this._resultUrl = null;
  }

  /** The client over the `api` and `token` attributes. */
  get client() {
    if (!this._client) {
      this._client = new Sketch2ColorClient({
        baseUrl: this.getAttribute("api") || scriptOrigin(),
        token: this.getAttribute("token") || undefined,
      });
    }
    return this._client;
  }

  /** The canvas the sketch is drawn on (black on white). */
  get sketchCanvas() {
    return this._sketch;
  }

  /** The hint layer: transparent except where colors were dabbed. */
  get hintCanvas() {
    return this._hints;
  }

  get tool() {
    return this._tool;
  }

  set tool(tool) {
    if (!(tool in TOOLS)) throw new TypeError(`unknown tool ${tool}: pen, brush or bucket`);
    this._tool = tool;
    this._showTool();
  }

  /** Colorize `image` (a Blob, File or canvas), or without one the drawing with its hints; shows the result,
   * fires `colorized`, and resolves to {blob, version, size, url}. Rejects with the client's error (and fires
   * `colorize-error`). */
  async colorize(image) {
    const own = image === undefined || image === null;
    this._busy(true);
    try {
      const options = {
        version: this.getAttribute("version") || undefined,
        size: this.getAttribute("size") || undefined,
        fill: this.getAttribute("fill") || undefined,
        lines: this.getAttribute("lines") || undefined,
      };
      if (own && this._hasHints) options.hints = this._hints;
      const result = await this.client.colorize(own ? this._sketch : image, options);
      if (this._resultUrl) URL.revokeObjectURL(this._resultUrl);
      this._resultUrl = URL.createObjectURL(result.blob);
      this._image.src = this._resultUrl;
      this._image.hidden = false;
      this._placeholder.hidden = true;
      this._download.href = this._resultUrl;
      this._download.download = result.filename;
      this._download.hidden = false;
      const detail = { ...result, url: this._resultUrl };
      this._say(result.version === null ? "Colorized." : `Colorized by model version ${result.version}.`);
      this.dispatchEvent(new CustomEvent("colorized", { detail, bubbles: true, composed: true }));
      return detail;
    } catch (error) {
      this._say(error.message || String(error), true);
      this.dispatchEvent(new CustomEvent("colorize-error", { detail: { error }, bubbles: true, composed: true }));
      throw error;
    } finally {
      this._busy(false);
    }
  }

  /** Start again: a white page, no hints, no result. */
  clear() {
    this._remember();
    this._resize(this._sketch.width, this._sketch.height);
  }

  /** Put a picture (Blob or File) on the page as the sketch, scaled down to at most 1024 px. */
  async load(file) {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, LONGEST_SIDE / Math.max(bitmap.width, bitmap.height));
    this._remember();
    this._resize(Math.max(1, Math.round(bitmap.width * scale)), Math.max(1, Math.round(bitmap.height * scale)));
    this._sketch.getContext("2d").drawImage(bitmap, 0, 0, this._sketch.width, this._sketch.height);
    bitmap.close();
  }

  // ---- drawing ---------------------------------------------------------------------------------------------
  _resize(width, height) {
    for (const canvas of [this._sketch, this._hints]) {
      canvas.width = width;
      canvas.height = height;
    }
    const context = this._sketch.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, width, height);
    this._hasHints = false;
    this._keyboard.x = width / 2;
    this._keyboard.y = height / 2;
    this._moveCursor();
  }

  _remember() {
    const grab = (canvas) => canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    this._undo.push({ sketch: grab(this._sketch), hints: grab(this._hints), hasHints: this._hasHints });
    if (this._undo.length > UNDO_DEPTH) this._undo.shift();
  }

  undo() {
    const last = this._undo.pop();
    if (!last) return;
    for (const [canvas, data] of [[this._sketch, last.sketch], [this._hints, last.hints]]) {
      canvas.width = data.width;
      canvas.height = data.height;
      canvas.getContext("2d").putImageData(data, 0, 0);
    }
    this._hasHints = last.hasHints;
  }

  _pen() {
    const hint = this._tool !== "pen";
    const context = (hint ? this._hints : this._sketch).getContext("2d");
    const scale = Math.max(this._sketch.width, this._sketch.height) / SIDE;
    context.strokeStyle = context.fillStyle = hint ? this._color.value : "#000";
    context.lineWidth = (this._tool === "brush" ? BRUSH_WIDTH : PEN_WIDTH) * scale;
    context.lineCap = context.lineJoin = "round";
    if (hint) this._hasHints = true;
    return { context, radius: this._tool === "bucket" ? DOT_RADIUS * scale : context.lineWidth / 2 };
  }

  _dot(x, y) {
    const { context, radius } = this._pen();
    context.beginPath();
    context.arc(x, y, radius, 0, Math.PI * 2);
    context.fill();
  }

  _line(from, to) {
    const { context } = this._pen();
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
  }

  _point(event) {
    const box = this._sketch.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) / box.width) * this._sketch.width,
      y: ((event.clientY - box.top) / box.height) * this._sketch.height,
    };
  }

  _moveCursor() {
    const { x, y, down } = this._keyboard;
    this._cursor.style.left = `${(x / this._sketch.width) * 100}%`;
    this._cursor.style.top = `${(y / this._sketch.height) * 100}%`;
    this._cursor.classList.toggle("down", down);
  }

  _showTool() {
    for (const button of this.shadowRoot.querySelectorAll("[data-tool]")) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === this._tool));
    }
  }

  _say(message, error = false) {
    this._status.textContent = message;
    this._status.classList.toggle("error", error);
    this._status.setAttribute("role", error ? "alert" : "status");
  }

  _busy(busy) {
    this._button.disabled = busy;
    this._button.setAttribute("aria-busy", String(busy));
    if (busy) this._say("Colorizing…");
  }

  // ---- input -----------------------------------------------------------------------------------------------
  _bind(root) {
    let last = null;
    this._stack.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      this._stack.focus({ preventScroll: true });
      this._stack.setPointerCapture(event.pointerId);
      this._remember();
      last = this._point(event);
      this._dot(last.x, last.y);
      if (this._tool === "bucket") last = null; // one dot per click: the server fills its region
    });
    this._stack.addEventListener("pointermove", (event) => {
      if (!last) return;
      const next = this._point(event);
      this._line(last, next);
      last = next;
    });
    const lift = () => {
      last = null;
    };
    this._stack.addEventListener("pointerup", lift);
    this._stack.addEventListener("pointercancel", lift);
    this._stack.addEventListener("keydown", (event) => this._key(event));
    this._stack.addEventListener("blur", () => {
      this._keyboard.down = false;
      this._moveCursor();
    });

    this._stack.addEventListener("dragover", (event) => {
      event.preventDefault();
      this._stack.classList.add("dragging");
    });
    this._stack.addEventListener("dragleave", () => this._stack.classList.remove("dragging"));
    this._stack.addEventListener("drop", (event) => {
      event.preventDefault();
      this._stack.classList.remove("dragging");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) this._open(file);
    });
    this._file.addEventListener("change", () => {
      if (this._file.files[0]) this._open(this._file.files[0]);
      this._file.value = "";
    });

    root.querySelector(".toolbar").addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      if (button.dataset.tool) this.tool = button.dataset.tool;
      else if (button.dataset.action === "undo") this.undo();
      else if (button.dataset.action === "clear") this.clear();
      else if (button.dataset.action === "open") this._file.click();
    });
    this._color.addEventListener("input", () => {
      if (this._tool === "pen") this.tool = "brush"; // picking a color means painting with it
    });
    this._button.addEventListener("click", () => this.colorize().catch(() => {})); // shown in the status line
  }

  async _open(file) {
    try {
      await this.load(file);
      this._say(`Opened ${file.name || "the picture"}.`);
    } catch (_) {
      this._say(`Cannot open ${file.name || "that file"}: not a picture this browser can read.`, true);
    }
  }

  _key(event) {
    const board = this._keyboard;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      this.undo();
    } else if (event.ctrlKey || event.metaKey || event.altKey) {
      return;
    } else if (key.startsWith("arrow")) {
      const step = event.shiftKey ? KEY_STEP * 4 : KEY_STEP;
      const from = { x: board.x, y: board.y };
      const dx = { arrowleft: -step, arrowright: step }[key] || 0;
      const dy = { arrowup: -step, arrowdown: step }[key] || 0;
      board.x = Math.min(this._sketch.width, Math.max(0, board.x + dx));
      board.y = Math.min(this._sketch.height, Math.max(0, board.y + dy));
      if (board.down && this._tool !== "bucket") this._line(from, board);
    } else if (key === " ") {
      board.down = !board.down;
      if (board.down) {
        this._remember();
        this._dot(board.x, board.y);
      }
    } else if (key === "enter") {
      this._remember();
      this._dot(board.x, board.y);
    } else if (key === "escape") {
      board.down = false;
    } else {
      const tool = Object.keys(TOOLS).find((name) => TOOLS[name].key === key);
      if (!tool) return;
      this.tool = tool;
    }
    event.preventDefault();
    this._moveCursor();
  }
}

if (!customElements.get("sketch-colorizer")) customElements.define("sketch-colorizer", SketchColorizer);
