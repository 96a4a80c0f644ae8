// Queues: counts per state, limit, rate, paused; set a limit or a rate, pause or resume (operators only).
// Every change goes through api() (session cookie + CSRF header); the server checks the input as the CLI does,
// and its message on a 400 is shown under the field it is about.
import { api, canChange, every, toast } from "./api.js";
import { el, formatNumber, formatTime, replaceChildren } from "./dom.js";

const body = document.querySelector("#queues tbody");
const STATES = [...document.querySelectorAll("#queues thead th.num")].map((th) => th.textContent.trim());
const COLUMNS = STATES.length + 4 + (canChange ? 3 : 0);
// One row per queue, kept across polls so that a value being typed into its fields is not wiped by a refresh.
const rows = new Map();

// A small form in a cell: an input, a Set button and the server's message under it.
function setForm(queue, key, placeholder, toValue, refresh) {
  const input = el("input", { name: key, autocomplete: "off", placeholder, "aria-label": `${key} of ${queue}`, size: 8 });
  const error = el("p", { class: "field-error", "data-error-for": key });
  const form = el("form", { class: `queue-${key}`, novalidate: true },
    input, el("button", { type: "submit", class: "button small ghost", "data-action": `set-${key}`, text: "Set" }), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    input.classList.remove("invalid");
    const value = toValue(input.value.trim());
    try {
      const { data } = await api("PUT", `/queues/${encodeURIComponent(queue)}/${key}`, { [key]: value });
      toast(`${queue}: ${key} ${data[key] === null ? "removed" : `set to ${data[key]}`}.`, "success");
      input.value = "";
      refresh();
    } catch (error_) {
      if (error_.status === 400) {
        error.textContent = error_.message;
        input.classList.add("invalid");
      } else toast(error_.message, "error");
    }
  });
  return el("td", {}, form);
}

// Empty means none; digits are sent as a number, anything else as typed so the server names what is wrong.
const limitValue = (text) => (text === "" ? null : /^-?\d+$/.test(text) ? Number(text) : text);
const rateValue = (text) => (text === "" ? null : text);

function pauseButton(queue, refresh) {
  const button = el("button", { type: "button", class: "button small ghost" });
  button.addEventListener("click", async () => {
    const action = button.dataset.action;
    try {
      await api("POST", `/queues/${encodeURIComponent(queue)}/${action}`);
      toast(`${queue} is ${action === "pause" ? "paused" : "active again"}.`, "success");
      refresh();
    } catch (error) {
      toast(error.message, "error");
    }
  });
  return button;
}

function makeRow(queue, refresh) {
  const cells = {
    counts: STATES.map(() => el("td", { class: "num" })),
    limit: el("td", { "data-field": "limit" }),
    rate: el("td", { "data-field": "rate" }),
    paused: el("td", { "data-field": "paused" }),
    pause: canChange ? pauseButton(queue, refresh) : null,
  };
  const tr = el("tr", { "data-name": queue },
    el("td", { text: queue }), cells.counts, cells.limit, cells.rate, cells.paused,
    canChange ? setForm(queue, "limit", "none", limitValue, refresh) : null,
    canChange ? setForm(queue, "rate", "10/m", rateValue, refresh) : null,
    canChange ? el("td", { class: "actions" }, cells.pause) : null);
  return { tr, cells };
}

function update({ cells }, queue) {
  STATES.forEach((state, index) => { cells.counts[index].textContent = formatNumber(queue.counts[state] || 0); });
  cells.limit.textContent = queue.limit === null ? "none" : String(queue.limit);
  cells.rate.textContent = queue.rate === null ? "none" : String(queue.rate);
  cells.paused.textContent = queue.paused ? `paused since ${formatTime(queue.paused_since)}` : "active";
  if (cells.pause) {
    cells.pause.dataset.action = queue.paused ? "resume" : "pause";
    cells.pause.textContent = queue.paused ? "resume" : "pause";
  }
}

const poll = every(5000, async () => {
  const { data } = await api("GET", "/queues");
  if (data.queues.length === 0) {
    rows.clear();
    replaceChildren(body, el("tr", {}, el("td", { colspan: COLUMNS, class: "empty", text: "No queues." })));
    return;
  }
  const seen = new Set();
  for (const queue of data.queues) {
    seen.add(queue.name);
    if (!rows.has(queue.name)) rows.set(queue.name, makeRow(queue.name, () => poll.now()));
    update(rows.get(queue.name), queue);
  }
  for (const name of [...rows.keys()]) if (!seen.has(name)) rows.delete(name);
  replaceChildren(body, data.queues.map((queue) => rows.get(queue.name).tr));
});
