// The overview: counts per state, live workers and throughput, refreshing by themselves.
import { api, confirmAction, every, toast } from "./api.js";
import { drawThroughput } from "./chart.js";
import { el, formatAge, formatAgo, formatBytes, formatNumber, formatTime, replaceChildren } from "./dom.js";

const REFRESH_MS = 2000;

function figures(stats) {
  if (!stats) return "–";
  return `${stats.cpu_percent.toFixed(1)} % · ${formatBytes(stats.memory_bytes)}`;
}

// A worker's running jobs beyond these wait behind a "+N more" button: a worker of 50 slots stays a few lines tall.
const SHOWN_JOBS = 5;
const expanded = new Set(); // the workers whose every job is shown: kept across the refreshes, which redraw the rows
let refocus = null; // the worker whose "+N more" / "Show fewer" was clicked: its new button gets the focus back

function slotsCell(worker, busy) {
  const total = worker.concurrency || 1;
  return el("td", { class: "num slots", "data-slots": `${busy}/${total}` },
    el("meter", { min: 0, max: total, value: busy, title: `${busy} of ${total} slots busy` }),
    el("span", { text: `${busy}/${total}` }));
}

function jobItem(job, now) {
  const running = job.started_at ? formatAge(now - new Date(job.started_at).getTime()) : "–";
  return el("li", {},
    el("a", { href: `/jobs/${encodeURIComponent(job.id)}`, class: "mono", text: job.id }),
    el("span", { class: "muted run-time", text: running }));
}

// Up to SHOWN_JOBS jobs in the row; past that the first few and "+N more", which opens every job in a row of its
// own under the worker, as wide as the table (a grid of 50 jobs in a dozen lines).
function jobsCell(worker, jobs, now, open) {
  if (jobs.length === 0) return el("td", {}, el("span", { class: "muted", text: "idle" }));
  const shown = jobs.length <= SHOWN_JOBS ? jobs : open ? [] : jobs.slice(0, SHOWN_JOBS - 1);
  const list = el("ul", { class: "slot-jobs" }, shown.map((job) => jobItem(job, now)));
  if (jobs.length <= SHOWN_JOBS) return el("td", { class: "jobs-cell" }, list);
  const toggle = el("button", {
    type: "button", class: "link more-jobs", "aria-expanded": String(open),
    text: open ? `Show fewer (${jobs.length} below)` : `+${jobs.length - shown.length} more`,
    onclick: () => {
      if (expanded.has(worker.id)) expanded.delete(worker.id);
      else expanded.add(worker.id);
      refocus = worker.id;
      stats.now();
    },
  });
  return el("td", { class: "jobs-cell" }, list, toggle);
}

function workerRows(worker, now) {
  const stats = worker.stats || {};
  const jobs = worker.jobs; // longest running first
  const open = expanded.has(worker.id) && jobs.length > SHOWN_JOBS;
  const name = el("span", { class: "mono", text: worker.id });
  const stopping = worker.stop_requested ? el("span", { class: "badge state-failed", text: "stopping" }) : null;
  const row = el("tr", { "data-worker": worker.id, class: open ? "expanded" : null },
    el("td", { class: "worker-id" }, name, " ", stopping),
    el("td", { text: worker.host }),
    el("td", { class: "num", text: worker.pid }),
    slotsCell(worker, jobs.length),
    jobsCell(worker, jobs, now, open),
    el("td", { class: "num", text: formatAgo(worker.heartbeat_at, now) }),
    el("td", { class: "num", text: figures(stats.worker) }),
    el("td", { class: "num", text: figures(stats.job) }));
  if (!open) return [row];
  const every = el("tr", { class: "worker-jobs", "data-jobs-of": worker.id },
    el("td", { colspan: 8 }, el("ul", { class: "slot-jobs all", "aria-label": `jobs running on ${worker.id}` },
      jobs.map((job) => jobItem(job, now)))));
  return [row, every];
}

async function refreshStats() {
  const { data } = await api("GET", "/stats");
  for (const [state, count] of Object.entries(data.jobs)) {
    const slot = document.querySelector(`[data-count="${state}"]`);
    if (slot) slot.textContent = formatNumber(count);
  }
  const now = Date.now();
  const body = document.querySelector("#workers tbody");
  const rows = data.workers.flatMap((worker) => workerRows(worker, now));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 8, class: "empty", text: "No live workers." })));
  // Redrawn every 2 s: an open list of jobs keeps where it was scrolled to, a clicked toggle keeps the focus.
  const scrolled = new Map([...body.querySelectorAll("tr[data-jobs-of]")].map(
    (row) => [row.dataset.jobsOf, row.querySelector(".slot-jobs").scrollTop]));
  replaceChildren(body, rows);
  for (const row of body.querySelectorAll("tr[data-jobs-of]")) {
    if (scrolled.has(row.dataset.jobsOf)) row.querySelector(".slot-jobs").scrollTop = scrolled.get(row.dataset.jobsOf);
  }
  if (refocus !== null) {
    const row = [...body.querySelectorAll("tr[data-worker]")].find((candidate) => candidate.dataset.worker === refocus);
    row?.querySelector(".more-jobs")?.focus();
    refocus = null;
  }
  document.getElementById("worker-count").textContent = `${data.workers.length} live`;
  showPaused(data.paused);
}

// The paused banner and the Pause/Resume button follow the queue's state.
function showPaused(paused, since) {
  document.getElementById("paused-banner").hidden = !paused;
  if (since !== undefined) document.getElementById("paused-since").textContent = since ? `since ${formatTime(since)}` : "";
  const button = document.getElementById("pause-queue");
  if (!button) return; // a viewer's page has no Pause/Resume button
  button.dataset.paused = String(paused);
  button.textContent = paused ? "Resume queue" : "Pause queue";
}

async function refreshThroughput() {
  const { data } = await api("GET", "/throughput?minutes=60");
  drawThroughput(document.getElementById("chart"), data.minutes);
  const sum = (key) => data.minutes.reduce((total, minute) => total + minute[key], 0);
  document.getElementById("total-succeeded").textContent = `(${formatNumber(sum("succeeded"))})`;
  document.getElementById("total-failed").textContent = `(${formatNumber(sum("failed"))})`;
}

const stats = every(REFRESH_MS, refreshStats);
every(5 * REFRESH_MS, refreshThroughput);

document.getElementById("stop-workers")?.addEventListener("click", async () => {
  const sure = await confirmAction("Stop all workers?",
    "Every live worker finishes its current job and exits. Workers started later are not affected.", "Stop workers");
  if (!sure) return;
  try {
    const { data } = await api("POST", "/workers/stop");
    toast(`Asked ${data.stop_requested} worker(s) to stop.`, "success");
    stats.now();
  } catch (error) {
    toast(error.message, "error");
  }
});

document.getElementById("pause-queue")?.addEventListener("click", async (event) => {
  const paused = event.currentTarget.dataset.paused === "true";
  if (!paused) {
    const sure = await confirmAction("Pause the queue?",
      "Workers finish the jobs they are running and claim no new job until you resume.", "Pause");
    if (!sure) return;
  }
  try {
    const { data } = await api("POST", paused ? "/resume" : "/pause");
    showPaused(data.paused, data.paused_since);
    toast(data.paused ? "The queue is paused." : "The queue runs again.", "success");
    stats.now();
  } catch (error) {
    toast(error.message, "error");
  }
});
