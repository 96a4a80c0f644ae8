// One job: its fields and every run of its history, refreshing every 2 seconds.
import { api, every, toast } from "./api.js";
import { el, formatDuration, formatTime, replaceChildren, stateBadge } from "./dom.js";

const REFRESH_MS = 2000;
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
    field("Last error", job.last_error, job.last_error ? "error-text" : ""));
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
    ({ data: job } = await api("GET", `/jobs/${encodeURIComponent(jobId)}`));
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
  document.getElementById("retry").hidden = job.state !== "dead";
  renderFields(job);
  const now = Date.now();
  const rows = job.history.map((run) => runRow(run, now));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 7, class: "empty", text: "Not run yet." })));
  replaceChildren(document.querySelector("#history tbody"), rows);
}

const refresher = every(REFRESH_MS, refresh);

document.getElementById("retry").addEventListener("click", async () => {
  try {
    await api("POST", `/jobs/${encodeURIComponent(jobId)}/retry`);
    toast(`Job ${jobId} is pending again.`, "success");
  } catch (error) {
    toast(error.message, "error");
  }
  refresher.now();
});
