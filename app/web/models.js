// The Models panel and the status pill: the published versions (GET /models), which one is served, pins and labels.

import { api } from "./api.js";
import { $, actionButton, cell, emptyRow, show } from "./dom.js";
import { updateHintNote } from "./hints.js";
import { state } from "./state.js";

export async function refreshModelStatus() {
  const pill = $("model-status");
  try {
    const models = await (await api("models", { auth: false })).json();
    const active = models.active_version;
    const coming = comingVersion(models);
    pill.textContent = (active ? `model version ${active}` : (coming ? "" : "no model yet"))
      + (coming ? `${active ? " · " : ""}loading version ${coming}…` : "");
    pill.classList.toggle("ready", Boolean(active));
    state.models = models;
    renderModels(models);
    updateHintNote();
  } catch (error) {
    pill.textContent = `models: ${error.message}`;
    pill.classList.remove("ready");
  }
}

// The version that is to be served but is not yet: the server loads it (loading_version), or it was pinned and the
// server has not started loading it (it looks every few seconds). A version that cannot be loaded is not coming.
function comingVersion(models) {
  const pinned = (models.policy || {}).served;
  const broken = (number) => (models.versions || []).some((version) => version.version === number && version.error);
  if (Number.isInteger(pinned) && pinned !== models.active_version) return broken(pinned) ? null : pinned;
  const loading = models.loading_version;
  return loading && loading !== models.active_version ? loading : null;
}

function renderModels(models) {  // GET /models: {active_version, loading_version, policy: {served, labels}, problem, versions}
  const policy = models.policy || { served: "latest", labels: {} };
  const served = models.active_version;
  const coming = comingVersion(models);
  const meanwhile = served ? ` (version ${served} serves meanwhile)` : "";
  let line = policy.served === "latest"
    ? `Serving the newest version that passed the quality gate${served ? ` (version ${served})` : ""}.`
    : `Pinned: serving version ${policy.served}.`;
  if (coming) {
    line = policy.served === "latest"
      ? `Serving the newest version that passed the quality gate: loading version ${coming}…${meanwhile}.`
      : `Pinned version ${policy.served}: loading it…${meanwhile}.`;
  }
  $("policy-line").textContent = line + (models.problem ? ` ${models.problem}` : "");
  $("back-to-latest").hidden = policy.served === "latest";
  const body = $("models-body");
  body.replaceChildren(...models.versions.map((version) => modelRow(version, served, coming)));
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

function modelRow(version, served, coming) {
  const row = document.createElement("tr");
  row.dataset.version = version.version;
  if (version.version === served) row.classList.add("selected");
  const name = document.createElement("span");
  const status = version.version === served ? " · served" : version.version === coming ? " · loading…" : "";
  name.textContent = `${version.version}${status}`;
  let sample = "–";
  if (version.has_sample) {
    sample = document.createElement("img");
    sample.className = "thumb";
    sample.alt = `sample of version ${version.version}`;
    sample.src = `models/${version.version}/sample.png`;
  }
  const val = version.val || {};
  const serve = () => changeModels("models/active", "PUT", { version: version.version });
  const actions = document.createElement("span");
  actions.className = "needs-token";
  if (version.version !== served) {
    if (!heldBack(version) && version.version !== coming) actions.append(actionButton("Serve", serve));
    if (!version.labels.length) {
      actions.append(actionButton("Delete", () => changeModels(`models/${version.version}`, "DELETE")));
    }
  }
  row.append(
    cell(name), cell(gateCell(version, version.version !== served && version.version !== coming, serve)), cell(sample), cell(version.dataset ?? "–"),
    cell(val.l1 !== undefined ? val.l1.toFixed(4) : "–"), cell(val.psnr !== undefined ? val.psnr.toFixed(2) : "–"),
    cell(version.labels.join(", ") || "–"),
    cell(version.created ? version.created.replace("T", " ").replace("+00:00", " UTC") : "–"), cell(actions),
  );
  if (version.error) row.title = `cannot be loaded: ${version.error}`;
  return row;
}

function heldBack(version) {
  return Boolean(version.gate) && !version.gate.passed;
}

// The Gate column, second so that a phone shows it without scrolling the table: "passed" (its reason in the
// tooltip), or "held back" with the reason written out (phones have no hover) and, unless it is served already,
// its Serve button (not while it is served or loading), the same PUT /models/active the actions column sends.
function gateCell(version, offerServe, serve) {
  const box = document.createElement("div");
  box.className = "gate";
  const badge = document.createElement("span");
  if (!version.gate) {
    badge.textContent = "–";
    box.append(badge);
    return box;
  }
  badge.textContent = version.gate.passed ? "passed" : "held back";
  badge.className = `state ${version.gate.passed ? "succeeded" : "failed"}`;
  badge.title = version.gate.reason;
  box.append(badge);
  if (heldBack(version)) {
    const reason = document.createElement("p");
    reason.className = "gate-reason";
    reason.textContent = version.gate.reason;
    box.append(reason);
    if (offerServe) {
      const button = actionButton("Serve", serve);
      button.className = "needs-token";
      button.title = `Pin version ${version.version}: serve it although the quality gate held it back`;
      box.append(button);
    }
  }
  return box;
}

async function changeModels(path, method, body) {
  show($("models-error"), "");
  try {
    await api(path, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {  // 401: the token lock says it (token.js)
    if (error.status !== 401) show($("models-error"), `Could not change the models: ${error.message}`);
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
  if (!$("label-name").checkValidity()) {
    show($("models-error"), `"${name}" is not a label: ${$("label-name").title}.`);
    return;
  }
  changeModels(`models/labels/${encodeURIComponent(name)}`, "PUT", { version });
});
