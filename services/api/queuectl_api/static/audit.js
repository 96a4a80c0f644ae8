// The audit log, read-only: newest first, a page at a time; every value goes in through textContent (el's "text").
import { api, every } from "./api.js";
import { el, formatTime, replaceChildren } from "./dom.js";

const PAGE = 50;
const REFRESH_MS = 3000;
const url = new URL(window.location.href);
let offset = Math.max(0, Number(url.searchParams.get("offset")) || 0);

function entryRow(entry) {
  return el("tr", {},
    el("td", { class: "mono", title: entry.at, text: formatTime(entry.at) }),
    el("td", { class: "mono", text: entry.actor }),
    el("td", {}, el("span", { class: "badge", text: entry.action })),
    el("td", { class: "mono", text: entry.target ?? "–" }),
    el("td", { class: "mono small audit-details", text: JSON.stringify(entry.details) }));
}

async function load() {
  // One entry more than the page shows: whether there are older ones.
  const { data } = await api("GET", `/audit?limit=${PAGE + 1}&offset=${offset}`);
  const entries = data.entries.slice(0, PAGE);
  const body = document.querySelector("#audit tbody");
  if (entries.length === 0) {
    replaceChildren(body, el("tr", {}, el("td", { colspan: 5, class: "empty", text: "No recorded actions." })));
  } else {
    replaceChildren(body, entries.map(entryRow));
  }
  document.getElementById("range").textContent = entries.length ? `${offset + 1}–${offset + entries.length}` : "";
  document.getElementById("newer").disabled = offset === 0;
  document.getElementById("older").disabled = data.entries.length <= PAGE;
}

function go(to) {
  offset = Math.max(0, to);
  window.history.replaceState(null, "", offset ? `/audit?offset=${offset}` : "/audit");
  refresher.now();
}

document.getElementById("newer").addEventListener("click", () => go(offset - PAGE));
document.getElementById("older").addEventListener("click", () => go(offset + PAGE));
const refresher = every(REFRESH_MS, load);
