// Jobs by state: search by id or command, sorting, pagination; the view lives in the URL.
import { api, canChange, confirmAction, every, toast } from "./api.js";
import { el, formatNumber, formatTime, replaceChildren, stateBadge } from "./dom.js";

const REFRESH_MS = 3000;
const url = new URL(window.location.href);
const view = {
  state: url.searchParams.get("state") || "",
  q: url.searchParams.get("q") || "",
  queue: url.searchParams.get("queue") || "",
  tag: url.searchParams.get("tag") || "",
  sort: url.searchParams.get("sort") || "created_at",
  order: url.searchParams.get("order") || "desc",
  limit: Number(url.searchParams.get("limit")) || 50,
  offset: Number(url.searchParams.get("offset")) || 0,
};
const SORTS = ["id", "command", "state", "attempts", "priority", "created_at", "updated_at", "run_at"];
if (!SORTS.includes(view.sort)) view.sort = "created_at";
if (view.order !== "asc") view.order = "desc";
if (!(view.limit >= 1 && view.limit <= 1000)) view.limit = 50;
if (!(view.offset >= 0)) view.offset = 0;
let total = 0;

function query() {
  const params = new URLSearchParams();
  if (view.state) params.set("state", view.state);
  if (view.q) params.set("q", view.q);
  if (view.queue) params.set("queue", view.queue);
  if (view.tag) params.set("tag", view.tag);
  params.set("sort", view.sort);
  params.set("order", view.order);
  params.set("limit", String(view.limit));
  params.set("offset", String(view.offset));
  return params;
}

function saveView() {
  const params = query();
  if (view.offset === 0) params.delete("offset");
  window.history.replaceState(null, "", `/jobs?${params}`);
}

function retryButton(job) {
  return el("button", {
    type: "button", class: "button small", text: "Retry", "data-retry": job.id,
    onclick: async (event) => {
      event.stopPropagation();
      try {
        await api("POST", `/jobs/${encodeURIComponent(job.id)}/retry`);
        toast(`Job ${job.id} is pending again.`, "success");
      } catch (error) {
        toast(error.message, "error");
      }
      refresher.now();
    },
  });
}

const CANCELLABLE = ["pending", "failed", "processing"];
const FINISHED = ["completed", "dead", "cancelled"];

function cancelButton(job) {
  return el("button", {
    type: "button", class: "button small", text: "Cancel", "data-cancel": job.id,
    onclick: async (event) => {
      event.stopPropagation();
      const sure = await confirmAction(`Cancel job ${job.id}?`,
        job.state === "processing" ? "Its worker stops the running command (its whole process tree) within seconds."
          : "It will not run. Jobs waiting for it end dead.", "Cancel job", "Keep it");
      if (!sure) return;
      try {
        const { data } = await api("POST", `/jobs/${encodeURIComponent(job.id)}/cancel`);
        toast(data.state === "cancelled" ? `Job ${job.id} is cancelled.` : `Job ${job.id} is being stopped by its worker.`,
          "success");
      } catch (error) {
        toast(error.message, "error");
      }
      refresher.now();
    },
  });
}

function jobRow(job) {
  const link = el("a", { href: `/jobs/${encodeURIComponent(job.id)}`, class: "mono", text: job.id });
  return el("tr", { "data-job": job.id },
    el("td", {}, link),
    el("td", { class: "command-cell" }, el("code", { text: job.command, title: job.command })),
    el("td", {}, stateBadge(job.state)),
    el("td", { "data-field": "queue", text: job.queue || "default" }),
    el("td", { "data-field": "tags" }, (job.tags || []).map((tag) => el("span", { class: "tag", text: tag }))),
    el("td", { class: "num", text: `${job.attempts} / ${job.max_retries + 1}` }),
    el("td", { class: "num", text: job.priority }),
    el("td", { text: formatTime(job.created_at) }),
    el("td", { text: formatTime(job.updated_at) }),
    el("td", { class: "actions" }, canChange && job.state === "dead" ? retryButton(job) : null,
      canChange && CANCELLABLE.includes(job.state) ? cancelButton(job) : null));
}

async function refreshCounts() {
  const { data } = await api("GET", "/stats");
  let all = 0;
  for (const [state, count] of Object.entries(data.jobs)) {
    all += count;
    const slot = document.querySelector(`[data-count="${state}"]`);
    if (slot) slot.textContent = formatNumber(count);
  }
  document.querySelector('[data-count="all"]').textContent = formatNumber(all);
}

async function refreshJobs() {
  const { data, headers } = await api("GET", `/jobs?${query()}`);
  total = Number(headers.get("X-Total-Count")) || 0;
  if (view.offset > 0 && view.offset >= total) {
    view.offset = Math.max(0, Math.floor((total - 1) / view.limit) * view.limit);
    return refreshJobs();
  }
  const rows = data.jobs.map(jobRow);
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", { colspan: 10, class: "empty", text: view.q || view.queue || view.tag ? "No job matches." : "No jobs here." })));
  }
  replaceChildren(document.querySelector("#jobs tbody"), rows);
  const first = total === 0 ? 0 : view.offset + 1;
  const last = view.offset + data.jobs.length;
  document.getElementById("range").textContent = `${formatNumber(first)}–${formatNumber(last)} of ${formatNumber(total)}`;
  document.getElementById("prev").disabled = view.offset === 0;
  document.getElementById("next").disabled = last >= total;
  return null;
}

function renderControls() {
  for (const tab of document.querySelectorAll("#state-tabs button")) {
    tab.classList.toggle("active", tab.dataset.state === view.state);
  }
  for (const header of document.querySelectorAll("[data-sort]")) {
    const active = header.dataset.sort === view.sort;
    header.classList.toggle("sorted", active);
    header.dataset.order = active ? view.order : "";
    header.setAttribute("aria-sort", active ? (view.order === "asc" ? "ascending" : "descending") : "none");
  }
  if (canChange) {
    document.getElementById("retry-all").hidden = view.state !== "dead";
    document.getElementById("purge-controls").hidden = !FINISHED.includes(view.state);
  }
  document.getElementById("search").value = view.q;
  document.getElementById("queue-filter").value = view.queue;
  document.getElementById("tag-filter").value = view.tag;
  document.getElementById("page-size").value = String(view.limit);
}

function changeView(changes) {
  Object.assign(view, changes);
  saveView();
  renderControls();
  refresher.now();
}

async function refreshAll() {
  try {
    await Promise.all([refreshJobs(), refreshCounts()]);
  } catch (error) {
    if (error.status === 400) {
      const row = el("tr", {}, el("td", { colspan: 10, class: "empty error", text: error.message }));
      replaceChildren(document.querySelector("#jobs tbody"), row);
    }
    throw error;
  }
}

const refresher = every(REFRESH_MS, refreshAll);
renderControls();

document.getElementById("state-tabs").addEventListener("click", (event) => {
  const tab = event.target.closest("button");
  if (tab) changeView({ state: tab.dataset.state, offset: 0 });
});
for (const header of document.querySelectorAll("[data-sort]")) {
  header.addEventListener("click", () => {
    const same = view.sort === header.dataset.sort;
    changeView({ sort: header.dataset.sort, order: same && view.order === "desc" ? "asc" : "desc", offset: 0 });
  });
}
let typing = null;
document.getElementById("search").addEventListener("input", (event) => {
  window.clearTimeout(typing);
  typing = window.setTimeout(() => changeView({ q: event.target.value.trim(), offset: 0 }), 250);
});
for (const [id, key] of [["queue-filter", "queue"], ["tag-filter", "tag"]]) {
  let waiting = null;
  document.getElementById(id).addEventListener("input", (event) => {
    window.clearTimeout(waiting);
    waiting = window.setTimeout(() => changeView({ [key]: event.target.value.trim(), offset: 0 }), 250);
  });
}
document.getElementById("page-size").addEventListener("change", (event) => {
  changeView({ limit: Number(event.target.value), offset: 0 });
});
document.getElementById("prev").addEventListener("click", () => changeView({ offset: Math.max(0, view.offset - view.limit) }));
document.getElementById("next").addEventListener("click", () => changeView({ offset: view.offset + view.limit }));
document.getElementById("retry-all")?.addEventListener("click", async () => {
  const sure = await confirmAction("Retry all dead jobs?",
    `Every dead job (${formatNumber(total)} now) goes back to pending with its attempts reset to 0.`, "Retry all");
  if (!sure) return;
  try {
    const { data } = await api("POST", "/dlq/retry-all");
    toast(`${formatNumber(data.retried)} dead job(s) are pending again.`, "success");
  } catch (error) {
    toast(error.message, "error");
  }
  refresher.now();
});
document.getElementById("purge")?.addEventListener("click", async () => {
  const state = view.state;
  const olderThan = document.getElementById("purge-age").value;
  // The dead letter queue has its own route (as `queuectl dlq purge`); the rest go through /purge.
  const [path, body] = state === "dead" ? ["/dlq/purge", {}] : ["/purge", { states: [state] }];
  body.older_than = olderThan === "0" ? 0 : olderThan;
  try {
    const { data: preview } = await api("POST", path, { ...body, dry_run: true });
    if (preview.count === 0) {
      toast(`No ${state} job to purge.`);
      return;
    }
    const age = olderThan === "0" ? "" : ` that ended more than ${olderThan} ago`;
    const sure = await confirmAction(`Purge ${formatNumber(preview.count)} ${state} job(s)?`,
      `Every ${state} job${age} is deleted with its history. This cannot be undone.`, "Purge");
    if (!sure) return;
    const { data } = await api("POST", path, body);
    toast(`Deleted ${formatNumber(data.count)} ${state} job(s).`, "success");
  } catch (error) {
    toast(error.message, "error");
  }
  refresher.now();
});
