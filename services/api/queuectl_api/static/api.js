// Talking to the JSON API with the session cookie and this session's CSRF token; toasts, confirmation, polling.
import { el } from "./dom.js";

const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
// A viewer's session (the read token) may only read: the pages show no action, and the server refuses them (403).
export const canChange = document.querySelector('meta[name="queuectl-role"]')?.content === "operator";

export class ApiError extends Error {
  constructor(message, status, fields) {
    super(message);
    this.status = status;
    this.fields = fields || {};
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json", "X-CSRF-Token": csrfToken };
  const options = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, options);
  } catch (error) {
    setLive(false);
    throw new ApiError("the server does not answer", 0);
  }
  if (response.status === 401) {
    const here = window.location.pathname + window.location.search;
    window.location.assign(`/login?next=${encodeURIComponent(here)}`);
    throw new ApiError("logged out", 401);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = { error: `unexpected answer (HTTP ${response.status})` };
  }
  setLive(response.status < 500);
  if (!response.ok) throw new ApiError(data.error || `HTTP ${response.status}`, response.status, data.fields);
  return { data, headers: response.headers };
}

function setLive(ok) {
  const live = document.getElementById("live");
  if (!live) return;
  live.classList.toggle("down", !ok);
  document.getElementById("live-text").textContent = ok ? "live" : "offline";
}

// Call `task` now and then every `ms` milliseconds after it finishes (never two at once); a hidden tab
// does not poll, and catches up as soon as it is shown again.
export function every(ms, task) {
  let timer = null;
  let running = false;
  let again = false; // asked to run while running: run once more right after
  const run = async () => {
    window.clearTimeout(timer);
    if (running) {
      again = true;
      return;
    }
    running = true;
    if (!document.hidden) {
      try {
        await task();
      } catch (error) {
        if (error.status !== 401) console.warn(error);
      }
    }
    running = false;
    if (again) {
      again = false;
      run();
    } else {
      timer = window.setTimeout(run, ms);
    }
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) run();
  });
  run();
  return { now: run };
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const note = el("div", { class: `toast ${kind}`, role: "status", text: message });
  box.append(note);
  window.setTimeout(() => note.remove(), 5000);
}

// A confirmation in a <dialog> of the page (never window.confirm): resolves true when confirmed.
export function confirmAction(title, text, confirmLabel, dismissLabel = "Cancel") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = confirmLabel;
  document.getElementById("confirm-cancel").textContent = dismissLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

export function showFieldErrors(form, fields) {
  for (const slot of form.querySelectorAll("[data-error-for]")) {
    const message = fields[slot.dataset.errorFor] || "";
    slot.textContent = message;
    const input = form.elements.namedItem(slot.dataset.errorFor);
    if (input) input.classList.toggle("invalid", Boolean(message));
  }
}
