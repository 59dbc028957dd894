// The Datasets panel: the datasets (GET /datasets), their imports, previews and deletion, and the zip upload. It
// also fills the training form's dataset choice with the ready ones. The message under the upload form follows the
// uploaded dataset's import until it is ready or failed.

import { api, uploadWithProgress } from "./api.js";
import { $, actionButton, cell, emptyRow, show } from "./dom.js";
import { state } from "./state.js";

export async function loadDatasets() {  // GET /datasets: [{name, train, val, state}, ...]
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
  } catch (error) {  // short words in the select (a long one widens the page); 401: the panel is locked (token.js)
    select.replaceChildren(new Option("datasets unavailable", ""));
    const why = error.status === 401 ? "the API token is needed" : error.message;
    $("datasets-body").replaceChildren(emptyRow(`Datasets unavailable — ${why}`, 5));
  }
}

async function renderDatasets(datasets) {
  state.datasets.importing = datasets.some((dataset) => dataset.state === "importing");
  const body = $("datasets-body");
  const rows = [];
  const imported = {};
  for (const dataset of datasets) {
    const row = document.createElement("tr");
    row.dataset.dataset = dataset.name;
    const badge = document.createElement("span");
    badge.className = `state ${dataset.state === "ready" ? "succeeded" : dataset.state === "failed" ? "failed" : "running"}`;
    badge.textContent = dataset.state;
    let pairs = `${dataset.train} train / ${dataset.val} val`;
    let preview = "–";
    if (dataset.state !== "ready") {
      try {
        const detail = await (await api(`datasets/${encodeURIComponent(dataset.name)}`)).json();
        const progress = detail.import ? detail.import.progress : null;
        pairs = dataset.state === "failed" ? (detail.import && detail.import.error) || "failed"
          : `${progress ? progress.done : 0} / ${progress && progress.total ? progress.total : "?"} files`;
      } catch (_) { /* the row still shows the state */ }
      imported[dataset.name] = pairs;
    } else {
      preview = previewLink(dataset.name);
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
    row.append(cell(dataset.name), cell(badge), cell(pairs), cell(preview), cell(actions));
    rows.push(row);
  }
  body.replaceChildren(...rows);
  if (!rows.length) {
    body.append(emptyRow("No datasets yet: upload a zip above.", 5));
  }
  followUpload(datasets, imported);
}

function followUpload(datasets, imported) {  // imported: name -> "n / m files" or the failure, from the rows
  const name = state.datasets.uploaded;
  if (!name) return;
  const dataset = datasets.find((entry) => entry.name === name);
  const message = $("datasets-message");
  if (!dataset) {
    show(message, "");
  } else if (dataset.state === "importing") {
    show(message, `Uploaded ${name}: importing… (${imported[name]})`);
  } else if (dataset.state === "ready") {
    show(message, `${name} is imported: ${dataset.train} train / ${dataset.val} val pairs, ready to train on.`);
  } else {
    show(message, "");
    show($("datasets-error"), `${name} could not be imported: ${imported[name]}`);
  }
  if (!dataset || dataset.state !== "importing") state.datasets.uploaded = null;
}

function previewLink(name) {  // "show": replaced by the dataset's preview picture when clicked
  const link = document.createElement("a");
  link.textContent = "show";
  link.href = "#";
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    const image = await (await api(`datasets/${encodeURIComponent(name)}/preview.png`)).blob();
    const img = document.createElement("img");
    img.className = "preview";
    img.alt = `pairs of ${name}`;
    img.src = URL.createObjectURL(image);
    link.replaceWith(img);
  });
  return link;
}

$("dataset-upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  show($("datasets-error"), "");
  show($("datasets-message"), "");
  try {
    await uploadWithProgress("datasets", form, $("upload-progress"));
    state.datasets.uploaded = form.get("name");
    show($("datasets-message"), `Uploaded ${form.get("name")}: importing…`);
    event.target.reset();
  } catch (error) {
    if (error.status === "network") return show($("datasets-error"), `Upload failed: ${error.detail}`);
    show($("datasets-error"), `Upload refused (${error.status}): ${error.detail}`);
  }
  loadDatasets();
});
