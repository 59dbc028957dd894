// The Chapters panel: many pages colorized in one batch by the server's workers (POST /batches). Drop pages (or one
// zip of them; NAME.hints.png beside NAME.png is its hint layer), follow each batch's progress, download all its
// finished pages as one zip, cancel or delete it; below the table, the finished pages beside their originals
// (gallery.js). app.js calls refreshBatches() with the other panels' polling.

import { api, uploadWithProgress } from "./api.js";
import { $, actionButton, cell, emptyRow, show } from "./dom.js";
import { showGalleries } from "./gallery.js";

const FINAL = ["done", "failed", "cancelled"];
let following = false;  // a batch is queued or running: the panel is polled

export function batchesRunning() {
  return following;
}

export async function refreshBatches() {  // GET /batches: [{id, state, pages_total, pages_done, ...}, ...]
  try {
    renderBatches(await (await api("batches")).json());
  } catch (error) {  // 401: the panel is locked (token.js)
    const why = error.status === 401 ? "the API token is needed" : error.message;
    $("batches-body").replaceChildren(emptyRow(`Chapters unavailable — ${why}`, 5));
  }
}

function renderBatches(batches) {
  following = batches.some((batch) => !FINAL.includes(batch.state));
  const rows = batches.map((batch) => {
    const row = document.createElement("tr");
    row.dataset.batch = batch.id;
    const badge = document.createElement("span");
    badge.className = `state ${batch.state === "done" ? "succeeded" : FINAL.includes(batch.state) ? batch.state : "running"}`;
    badge.textContent = batch.state;
    const progress = document.createElement("progress");
    progress.max = Math.max(1, batch.pages_total);
    progress.value = batch.pages_done + batch.pages_failed;
    const counts = document.createElement("span");
    counts.textContent = ` ${batch.pages_done} / ${batch.pages_total} pages`;
    const pages = document.createElement("span");
    pages.append(progress, counts);
    const failed = document.createElement("span");
    failed.textContent = batch.pages_failed ? `${batch.pages_failed} failed` : "–";
    failed.title = batch.failures.map((failure) => `${failure.name}: ${failure.reason}`).join("\n") || batch.error || "";
    if (batch.error) failed.textContent = batch.error;
    row.append(cell(batch.id.slice(0, 8)), cell(badge), cell(pages), cell(failed), cell(actionsOf(batch)));
    return row;
  });
  $("batches-body").replaceChildren(...rows);
  if (!rows.length) $("batches-body").append(emptyRow("No chapters yet: choose pages above.", 5));
  showGalleries(batches);
}

function actionsOf(batch) {
  const actions = document.createElement("span");
  if (batch.pages_done) actions.append(actionButton("Download all", () => download(batch)));
  if (!FINAL.includes(batch.state)) actions.append(actionButton("Cancel", () => change(batch, "POST", "/cancel")));
  else actions.append(actionButton("Delete", () => change(batch, "DELETE", "")));
  return actions;
}

async function change(batch, method, suffix) {
  try {
    await api(`batches/${batch.id}${suffix}`, { method });
  } catch (error) {
    show($("batches-error"), `Could not change chapter ${batch.id.slice(0, 8)}: ${error.message}`);
  }
  refreshBatches();
}

async function download(batch) {  // the pages finished so far, as one zip (fetched with the token, then saved)
  try {
    const blob = await (await api(`batches/${batch.id}/result.zip`)).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `chapter-${batch.id.slice(0, 8)}.zip`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  } catch (error) {
    show($("batches-error"), `Could not download chapter ${batch.id.slice(0, 8)}: ${error.message}`);
  }
}

$("batch-upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const data = new FormData();
  for (const file of form.elements.files.files) data.append("files", file, file.name);
  const query = new URLSearchParams({ size: form.elements.size.value, format: form.elements.format.value });
  show($("batches-error"), "");
  show($("batches-message"), "");
  try {
    const answer = await uploadWithProgress(`batches?${query}`, data, $("batch-upload-progress"));
    show($("batches-message"), `Chapter ${answer.id.slice(0, 8)}: ${answer.pages_total} pages queued with version ${answer.version}`);
    form.reset();
  } catch (error) {
    if (error.status === "network") return show($("batches-error"), `Upload failed: ${error.detail}`);
    show($("batches-error"), `Chapter refused (${error.status}): ${error.detail}`);
  }
  refreshBatches();
});
