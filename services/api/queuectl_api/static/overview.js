// The overview: counts per state, live workers and throughput, refreshing by themselves.
import { api, confirmAction, every, toast } from "./api.js";
import { drawThroughput } from "./chart.js";
import { el, formatAge, formatAgo, formatBytes, formatNumber, formatTime, replaceChildren } from "./dom.js";

const REFRESH_MS = 2000;

function figures(stats) {
  if (!stats) return "–";
  return `${stats.cpu_percent.toFixed(1)} % · ${formatBytes(stats.memory_bytes)}`;
}

function workerRow(worker, now) {
  const stats = worker.stats || {};
  const job = worker.current_job
    ? el("a", { href: `/jobs/${encodeURIComponent(worker.current_job)}`, class: "mono", text: worker.current_job })
    : el("span", { class: "muted", text: "idle" });
  const running = worker.current_job_started_at ? formatAge(now - new Date(worker.current_job_started_at).getTime()) : "–";
  const name = el("span", { class: "mono", text: worker.id });
  const stopping = worker.stop_requested ? el("span", { class: "badge state-failed", text: "stopping" }) : null;
  return el("tr", {},
    el("td", {}, name, " ", stopping),
    el("td", { text: worker.host }),
    el("td", { class: "num", text: worker.pid }),
    el("td", {}, job),
    el("td", { class: "num", text: running }),
    el("td", { class: "num", text: formatAgo(worker.heartbeat_at, now) }),
    el("td", { class: "num", text: figures(stats.worker) }),
    el("td", { class: "num", text: figures(stats.job) }));
}

async function refreshStats() {
  const { data } = await api("GET", "/stats");
  for (const [state, count] of Object.entries(data.jobs)) {
    const slot = document.querySelector(`[data-count="${state}"]`);
    if (slot) slot.textContent = formatNumber(count);
  }
  const now = Date.now();
  const body = document.querySelector("#workers tbody");
  const rows = data.workers.map((worker) => workerRow(worker, now));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 8, class: "empty", text: "No live workers." })));
  replaceChildren(body, rows);
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
