// The Download menu under the result. PNG is the shown result itself. PSD and ORA are the same picture as layers
// for painting apps: POST /colorize again with exactly what made the shown result (its sketch, hint layer, size,
// fill and the version that drew it) plus `format`, saved under the PNG's name with the format's extension. The
// menu is a <details>: Enter or Space opens it, Tab walks its items, Esc closes it.

import { api } from "./api.js";
import { $, show } from "./dom.js";
import { state } from "./state.js";

const menu = $("download-menu");
const summary = menu.querySelector("summary");
const layerButtons = [...menu.querySelectorAll("button[data-format]")];

export function offerDownloads(entry) {
  const link = $("download");
  link.href = entry.url;
  link.download = entry.name;
  menu.hidden = false;
  show($("download-error"), "");
}

function close() {
  menu.open = false;
  summary.focus();
}

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);  // revoked at once, some browsers lose the download
}

async function downloadLayers(format) {
  const entry = state.shown;
  const { inputs } = entry;
  const kind = format.toUpperCase();
  menu.setAttribute("aria-busy", "true");
  for (const button of layerButtons) button.disabled = true;
  show($("download-status"), `Making the ${kind} file…`);
  show($("download-error"), "");
  let failed = false;
  try {
    const form = new FormData();
    form.append("file", inputs.sketch, inputs.sketchName);
    if (inputs.hints) form.append("hints", inputs.hints, "hints.png");
    const query = new URLSearchParams({ size: inputs.size, fill: inputs.fill, version: entry.version, format });
    const response = await api(`colorize?${query}`, { method: "POST", body: form, auth: false });
    save(await response.blob(), entry.name.replace(/\.png$/, `.${format}`));
    close();
  } catch (error) {
    failed = true;
    show($("download-error"), `Could not make the ${kind} file: ${error.message}`);
  } finally {
    menu.removeAttribute("aria-busy");
    for (const button of layerButtons) button.disabled = false;
    show($("download-status"), "");
  }
  if (failed && menu.open) layerButtons.find((button) => button.dataset.format === format).focus();
}

for (const button of layerButtons) button.addEventListener("click", () => downloadLayers(button.dataset.format));
$("download").addEventListener("click", close);
menu.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && menu.open) {
    close();
    event.preventDefault();
  }
});
