// One job: its fields, its latest run's output (live, every second) and every run of its history.
import { api, canChange, confirmAction, every, toast } from "./api.js";
import { el, formatDuration, formatTime, replaceChildren, stateBadge } from "./dom.js";

const REFRESH_MS = 2000;
const LOG_MS = 1000; // workers store a running job's new output every 0.5 s
const CANCELLABLE = ["pending", "failed", "processing"];
const jobId = document.getElementById("job-page").dataset.jobId;
const openOutputs = new Set(); // runs whose output the user unfolded, kept open across refreshes

function field(label, value, className = "") {
  return [el("dt", { text: label }), el("dd", { class: className, text: value ?? "–" })];
}

function renderFields(job) {
  replaceChildren(document.getElementById("job-fields"),
    field("State", job.state),
    field("Attempts (failed runs)", `${job.attempts} of at most ${job.max_retries + 1} runs`),
    field("Max retries", job.max_retries),
    field("Priority", job.priority),
    field("Run at", formatTime(job.run_at)),
    field("Timeout", job.timeout === null ? "none" : `${job.timeout} s`),
    field("Created", formatTime(job.created_at)),
    field("Updated", formatTime(job.updated_at)),
    field("Exit code", job.exit_code),
    field("Worker", job.worker_id, "mono"),
    field("Last error", job.last_error, job.last_error ? "error-text" : ""),
    field("Retried on exit codes", job.retry_on === null ? "any" : job.retry_on.join(", ") || "none"),
    field("Not retried on", job.no_retry_on === null ? "–" : job.no_retry_on.join(", ") || "–"),
    el("dt", { text: "Waits for" }),
    el("dd", { id: "job-after" }, job.after.length === 0 ? "–" : job.after.flatMap((id, index) => [
      index ? ", " : null, el("a", { href: `/jobs/${encodeURIComponent(id)}`, class: "mono", text: id })])));
}

function outputCell(run) {
  if (!run.output) return el("span", { class: "muted", text: run.finished_at ? "(none)" : "…" });
  const details = el("details", { "data-attempt": run.attempt },
    el("summary", { text: `${run.output.length.toLocaleString()} characters` }),
    el("pre", { class: "output", text: run.output }));
  details.open = openOutputs.has(run.attempt);
  details.addEventListener("toggle", () => {
    if (details.open) openOutputs.add(run.attempt);
    else openOutputs.delete(run.attempt);
  });
  return details;
}

function runRow(run, now) {
  const started = new Date(run.started_at).getTime();
  const running = run.finished_at === null;
  const duration = running ? now - started : new Date(run.finished_at).getTime() - started;
  return el("tr", { "data-attempt": run.attempt },
    el("td", { class: "num", text: run.attempt }),
    el("td", { text: formatTime(run.started_at) }),
    el("td", { class: "num" }, formatDuration(duration), running ? el("span", { class: "badge state-processing", text: "running" }) : null),
    el("td", { class: "num", text: run.exit_code ?? "–" }),
    el("td", { class: "mono", text: run.worker_id }),
    el("td", { class: run.error ? "error-text" : "muted", text: run.error ?? "–" }),
    el("td", {}, outputCell(run)));
}

async function refresh() {
  let job;
  try {
    ({ data: job } = await api("GET", `/jobs/${encodeURIComponent(jobId)}?history_limit=${historyLimit}`));
  } catch (error) {
    const message = document.getElementById("job-error");
    message.textContent = error.message;
    message.hidden = false;
    replaceChildren(document.querySelector("#history tbody"),
      el("tr", {}, el("td", { colspan: 7, class: "empty", text: "No history." })));
    if (error.status === 404) return;
    throw error;
  }
  document.getElementById("job-error").hidden = true;
  replaceChildren(document.getElementById("job-state"), stateBadge(job.state));
  document.getElementById("job-command").textContent = job.command;
  if (canChange) {
    document.getElementById("retry").hidden = job.state !== "dead";
    document.getElementById("cancel").hidden = !CANCELLABLE.includes(job.state);
  }
  renderFields(job);
  const now = Date.now();
  const rows = job.history.map((run) => runRow(run, now));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 7, class: "empty", text: "Not run yet." })));
  replaceChildren(document.querySelector("#history tbody"), rows);
  const older = job.history_total - job.history.length;
  document.getElementById("history-label").textContent = older > 0
    ? `the latest ${job.history.length} of ${job.history_total} runs, oldest first` : "every run, oldest first";
  document.getElementById("older-runs").hidden = older <= 0 || historyLimit >= MAX_HISTORY;
}

// A job retried for ever has runs without end: the page asks for the latest few, and more on request.
const MAX_HISTORY = 1000;
let historyLimit = 20;
document.getElementById("older-runs").addEventListener("click", () => {
  historyLimit = Math.min(MAX_HISTORY, historyLimit + 100);
  refresher.now();
});

const refresher = every(REFRESH_MS, refresh);

document.getElementById("retry")?.addEventListener("click", async () => {
  try {
    await api("POST", `/jobs/${encodeURIComponent(jobId)}/retry`);
    toast(`Job ${jobId} is pending again.`, "success");
  } catch (error) {
    toast(error.message, "error");
  }
  refresher.now();
});

// The latest run's output, as `queuectl logs --follow` shows it: replaced whole (it is a capped tail).
async function refreshLog() {
  const { data: run } = await api("GET", `/jobs/${encodeURIComponent(jobId)}/logs`);
  const label = document.getElementById("log-label");
  if (run.attempt === null) label.textContent = `not run yet (${run.state})`;
  else label.textContent = `run ${run.attempt}${run.running ? " · running, live" : " · finished"}`;
  const log = document.getElementById("log");
  if (log.textContent !== run.output) {
    log.textContent = run.output;
    if (document.getElementById("log-follow").checked) log.scrollTop = log.scrollHeight;
  }
}

every(LOG_MS, refreshLog);

document.getElementById("cancel")?.addEventListener("click", async () => {
  const sure = await confirmAction(`Cancel job ${jobId}?`,
    "A waiting job will not run; a running one is stopped (its whole process tree) by its worker within seconds."
    + " Jobs waiting for it end dead.", "Cancel job", "Keep it");
  if (!sure) return;
  try {
    const { data } = await api("POST", `/jobs/${encodeURIComponent(jobId)}/cancel`);
    toast(data.state === "cancelled" ? `Job ${jobId} is cancelled.` : `Job ${jobId} is being stopped by its worker.`,
      "success");
  } catch (error) {
    toast(error.message, "error");
  }
  refresher.now();
});
