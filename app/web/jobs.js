// The Training panel: the launch form with its time estimate, and the jobs table (GET /jobs) with
// its Cancel, Resume and Delete buttons. A click on a job draws its loss curves (chart.js).
// Each row says in words what its job waits for: its place in the queue and when it should start, start-up, or a
// version being published (the step counter stands still meanwhile); the ETA column counts the whole time left
// (queue wait, start-up, steps, exports) as the API estimates it from the jobs that ran on this server.
// The message under the launch form follows the job it launched until it ends.
//
// The job states are the API's own list: the enum JobState in /openapi.json, read once. Which of them are final,
// which can be resumed and which are already stopping is said in JOB_STATE_GROUPS below, and nowhere else: a listed
// state that no group names (a new one) counts as active: it shows an ETA and a Cancel button, not Delete.

import { api } from "./api.js";
import { drawChart } from "./chart.js";
import { $, actionButton, cell, emptyRow, formatSeconds, show } from "./dom.js";
import { state } from "./state.js";

const JOB_STATE_GROUPS = {
  final: ["succeeded", "failed", "cancelled"],  // the job has ended: it can be deleted
  resumable: ["failed", "cancelled"],  // it can be queued again from its last checkpoint
  stopping: ["cancelling"],  // active, but it has been asked to stop already: no Cancel button
};
// Used only when /openapi.json has no list of job states (and said so in the console).
const FALLBACK_JOB_STATES = ["queued", "running", "cancelling", "succeeded", "failed", "cancelled"];
const { jobs } = state;
const PHASE_WORDS = { starting: "starting (building the networks)…", publishing: "publishing a new version…" };
let jobStates = null;  // a promise of {active, cancellable, resumable}, sets of state names, made on first use

function jobStateEnum(openapi) {  // components.schemas.JobState, or the inline enum of Job's state
  const schemas = (openapi.components || {}).schemas || {};
  if (schemas.JobState && Array.isArray(schemas.JobState.enum)) return schemas.JobState.enum;
  const inline = ((schemas.Job || {}).properties || {}).state || {};
  return Array.isArray(inline.enum) ? inline.enum : null;
}

async function loadJobStates() {
  let names = null;
  try {
    names = jobStateEnum(await (await api("openapi.json", { auth: false })).json());
    if (!names) console.error("/openapi.json lists no job states (components.schemas.JobState.enum): using the page's own list");
  } catch (error) {
    console.error(`the job states could not be read from /openapi.json (${error.message}): using the page's own list`);
  }
  names = names || FALLBACK_JOB_STATES;
  const grouped = Object.values(JOB_STATE_GROUPS).flat().filter((name) => !names.includes(name));
  if (grouped.length) console.error(`job states the page groups but the API does not list: ${grouped.join(", ")}`);
  const active = new Set(names.filter((name) => !JOB_STATE_GROUPS.final.includes(name)));
  return {
    active,
    cancellable: new Set([...active].filter((name) => !JOB_STATE_GROUPS.stopping.includes(name))),
    resumable: new Set(JOB_STATE_GROUPS.resumable),
  };
}

function jobRow(job, states) {
  const progress = job.progress || {};
  const active = states.active.has(job.state);
  const row = document.createElement("tr");
  row.className = "job" + (job.id === jobs.selected ? " selected" : "");
  row.dataset.jobId = job.id;
  const id = document.createElement("code");
  id.textContent = String(job.id).slice(0, 8);
  id.title = job.id;
  const badge = document.createElement("span");
  badge.className = `state ${job.state}`;
  badge.textContent = job.state;
  if (job.error) badge.title = job.error;
  const total = progress.total_steps;
  const step = progress.step ?? 0;
  const bar = document.createElement("span");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = total ? `${Math.min(100, (100 * step) / total)}%` : "0%";
  bar.append(fill);
  const progressCell = document.createElement("span");
  progressCell.append(bar, `${step} / ${total ?? "?"}`);
  const words = waitWords(job);
  if (words) {
    const line = document.createElement("span");
    line.className = "job-phase";
    line.dataset.testid = "job-phase";
    line.textContent = words;
    progressCell.append(line);
  }
  const rate = progress.images_per_second;
  const actions = document.createElement("span");
  if (states.cancellable.has(job.state)) {
    actions.append(actionButton("Cancel", () => jobAction(job.id, "cancel", "POST")));
  }
  if (states.resumable.has(job.state)) {
    actions.append(actionButton("Resume", () => jobAction(job.id, "resume", "POST")));
  }
  if (!active) {
    actions.append(actionButton("Delete", () => jobAction(job.id, "", "DELETE")));
  }
  row.append(
    cell(id), cell(job.dataset ?? "–"), cell(badge), cell(progressCell),
    cell(active ? formatSeconds(timeLeft(job)) : "–"),
    cell(rate ? rate.toFixed(1) : "–"), cell(progress.version ?? "–"), cell(actions),
  );
  row.addEventListener("click", () => { jobs.selected = job.id; refreshJobs(); });
  return row;
}

function ordinal(number) {
  const tens = number % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[number % 10] || "th");
  return `${number}${suffix}`;
}

// What the job waits for, in words ("" while it simply trains): its place in line, start-up, an export.
function waitWords(job) {
  const queue = job.queue;
  if (job.state === "queued" && queue) {
    const place = queue.position === 1 ? "next in line" : `${ordinal(queue.position)} in line`;
    if (queue.wait_seconds === null || queue.wait_seconds === undefined) return `${place}, waits for the jobs ahead`;
    return queue.wait_seconds < 1 ? `${place}, starts as soon as a worker takes it`
      : `${place}, starts in about ${formatSeconds(queue.wait_seconds)}`;
  }
  if (job.state !== "running") return "";
  const phase = (job.progress || {}).phase;
  return PHASE_WORDS[phase] || "";
}

// The whole time until the job ends: a queued job's wait, then its own start-up, steps and exports.
function timeLeft(job) {
  const left = job.seconds_left ?? (job.progress || {}).eta_seconds;
  if (job.state !== "queued" || left === null || left === undefined) return left;
  const wait = job.queue ? job.queue.wait_seconds : 0;
  return wait === null || wait === undefined ? null : wait + left;
}

// The launch form's message, kept true while the job it launched goes on.
function launchedWords(job) {
  const name = `Job ${String(job.id).slice(0, 8)}`;
  const progress = job.progress || {};
  switch (job.state) {
    case "queued": return `${name} is queued: ${waitWords(job) || "waiting for a worker"}.`;
    case "running": {
      const doing = waitWords(job) || `training, step ${progress.step ?? 0} / ${progress.total_steps ?? "?"}`;
      const left = timeLeft(job);
      const tail = Number.isFinite(left) ? `, about ${formatSeconds(left)} left` : "";
      return `${name} is ${doing.replace(/…$/, "")}${tail}.`;
    }
    case "succeeded":
      return `${name} succeeded` + (progress.version ? `: it published version ${progress.version}.` : ".");
    case "failed": return `${name} failed${job.error ? `: ${job.error}` : "."}`;
    case "cancelled": return `${name} was cancelled.`;
    default: return `${name} is ${job.state}.`;
  }
}

// How long the form's job would take, from the newest speed a job measured here. A step's work grows with
// the square of the width (ngf and ndf), so a speed measured at another width is scaled by that.
function updateEstimate() {
  const form = new FormData($("launch"));
  const steps = Number(form.get("steps"));
  const batch = Number(form.get("batch_size"));
  const width = Number(form.get("ngf"));
  const measured = jobs.list.find((job) => job.progress && job.progress.images_per_second > 0);
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

export async function refreshJobs() {
  const body = $("jobs-body");
  jobStates = jobStates || loadJobStates();
  const states = await jobStates;
  try {
    const list = await (await api("jobs")).json();  // job records, newest first
    show($("jobs-error"), "");
    body.replaceChildren(...list.map((job) => jobRow(job, states)));
    if (!list.length) {
      body.append(emptyRow("No jobs yet: launch one above.", 8));
    }
    jobs.list = list;
    const launched = jobs.launched && list.find((job) => job.id === jobs.launched);
    if (launched) show($("launch-message"), launchedWords(launched));
    updateEstimate();
    if (!jobs.selected && list.length) jobs.selected = list[0].id;
    if (jobs.selected) await drawChart(jobs.selected);
  } catch (error) {  // 401: the panel is locked until the token is entered (token.js), no error to show
    show($("jobs-error"), error.status === 401 ? "" : `Jobs unavailable — ${error.message}`);
  }
}

async function jobAction(jobId, action, method) {
  const path = `jobs/${encodeURIComponent(jobId)}` + (action ? `/${action}` : "");
  try {
    await api(path, { method });
    if (method === "DELETE" && jobs.selected === jobId) jobs.selected = null;
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
    promote: form.get("promote"),  // auto: the quality gate decides whether the new version is served
  };
  const message = $("launch-message");
  show(message, "");
  try {
    const job = await (await api("jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    })).json();
    jobs.selected = job.id;
    jobs.launched = job.id;
    show(message, launchedWords(job));
    show($("jobs-error"), "");
  } catch (error) {
    show($("jobs-error"), `Could not launch: ${error.message}`);
  }
  refreshJobs();
});
