// Schedules: the list (next and last run, a link to the last job), pause/resume, run now, delete, and the add form.
// Every change goes through api() (session cookie + CSRF header); the server checks the input as the CLI does.
import { api, canChange, confirmAction, every, toast } from "./api.js";
import { el, formatTime, replaceChildren } from "./dom.js";

const body = document.querySelector("#schedules tbody");
const form = document.getElementById("schedule-form");

function actions(schedule, refresh) {
  const name = encodeURIComponent(schedule.name);
  const act = (label, method, path, done, danger = false) =>
    el("button", {
      type: "button",
      class: `button small ${danger ? "danger" : "ghost"}`,
      "data-action": label,
      text: label,
      onclick: async () => {
        if (danger && !(await confirmAction(`Delete ${schedule.name}?`, "The schedule goes; the jobs it made stay.", "Delete"))) return;
        try {
          const { data } = await api(method, `/schedules/${name}${path}`);
          toast(done(data), "success");
          refresh();
        } catch (error) {
          toast(error.message, "error");
        }
      },
    });
  return el("td", { class: "actions" },
    schedule.paused
      ? act("resume", "POST", "/resume", () => `${schedule.name} is active again.`)
      : act("pause", "POST", "/pause", () => `${schedule.name} is paused.`),
    act("run now", "POST", "/run", (job) => `Enqueued ${job.id}.`),
    act("delete", "DELETE", "", () => `${schedule.name} is deleted.`, true));
}

function row(schedule, refresh) {
  const last = schedule.last_job_id
    ? el("a", { href: `/jobs/${encodeURIComponent(schedule.last_job_id)}`, text: formatTime(schedule.last_run_at) })
    : "–";
  return el("tr", { "data-name": schedule.name },
    el("td", { text: schedule.name }),
    el("td", {}, el("code", { text: schedule.cron || `every ${schedule.every}` })),
    el("td", { text: schedule.timezone }),
    el("td", { text: schedule.paused ? "paused" : "active" }),
    el("td", { text: schedule.paused ? "–" : formatTime(schedule.next_run_at) }),
    el("td", {}, last),
    el("td", {}, el("code", { text: schedule.job.command })),
    canChange ? actions(schedule, refresh) : null);
}

const poll = every(5000, async () => {
  const { data } = await api("GET", "/schedules");
  if (data.schedules.length === 0) {
    replaceChildren(body, el("tr", {}, el("td", { colspan: 8, class: "empty", text: "No schedules." })));
    return;
  }
  replaceChildren(body, data.schedules.map((schedule) => row(schedule, poll.now)));
});

function fieldError(name, message) {
  const slot = form.querySelector(`[data-error-for="${name}"]`);
  if (slot) slot.textContent = message || "";
}

// Which form field a server message is about (the server names the key; the form joins cron and every).
function fieldOf(message) {
  if (/^(a schedule's name|a schedule named)/.test(message)) return "name";
  if (/(cron|every|interval)/.test(message) && !/^the schedule's job/.test(message)) return "when";
  if (/time zone|timezone/.test(message)) return "timezone";
  return "job";
}

if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const formError = document.getElementById("schedule-form-error");
    for (const name of ["name", "when", "timezone", "job"]) fieldError(name, "");
    formError.hidden = true;
    let job;
    try {
      job = JSON.parse(form.elements.job.value);
    } catch (error) {
      fieldError("job", `not valid JSON: ${error.message}`);
      return;
    }
    const when = form.elements.when.value.trim();
    const request = {
      name: form.elements.name.value.trim(),
      timezone: form.elements.timezone.value.trim() || "UTC",
      overlap: form.elements.overlap.value,
      job,
    };
    request[form.elements.kind.value] = when;
    try {
      const { data } = await api("POST", "/schedules", request);
      toast(`${data.name}: next run at ${formatTime(data.next_run_at)}.`, "success");
      form.reset();
      poll.now();
    } catch (error) {
      if (error.status === 400) fieldError(fieldOf(error.message), error.message);
      else {
        formError.textContent = error.message;
        formError.hidden = false;
      }
    }
  });
}
