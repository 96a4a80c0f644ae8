// The enqueue form: the server checks the job (as the CLI does) and names every bad field.
import { api, showFieldErrors } from "./api.js";
import { el, replaceChildren } from "./dom.js";

const form = document.getElementById("enqueue-form");
const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const NUMERIC_FIELDS = ["max_retries", "priority", "delay", "timeout"];
const LIST_FIELDS = ["after", "retry_on", "no_retry_on"]; // comma- or space-separated

function items(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

// Numbers go as JSON numbers; anything else goes as typed, so that the server's message names the field.
function payload() {
  const job = { command: form.elements.command.value };
  const id = form.elements.id.value.trim();
  if (id) job.id = id;
  const queue = form.elements.queue.value.trim();
  if (queue) job.queue = queue;
  // Tags are split on commas; the server says which tag it refuses and why.
  const tags = form.elements.tags.value.split(",").map((tag) => tag.trim()).filter(Boolean);
  if (tags.length) job.tags = tags;
  for (const name of NUMERIC_FIELDS) {
    const text = form.elements[name].value.trim();
    if (text) job[name] = NUMBER.test(text) ? Number(text) : text;
  }
  for (const name of LIST_FIELDS) {
    const list = items(form.elements[name].value);
    if (list.length) job[name] = name === "after" ? list : list.map((item) => (NUMBER.test(item) ? Number(item) : item));
  }
  return job;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const formError = document.getElementById("form-error");
  const done = document.getElementById("enqueued");
  const button = document.getElementById("submit");
  button.disabled = true;
  try {
    const { data: job } = await api("POST", "/jobs", payload());
    showFieldErrors(form, {});
    formError.hidden = true;
    replaceChildren(done, "Enqueued job ",
      el("a", { href: `/jobs/${encodeURIComponent(job.id)}`, class: "mono", id: "enqueued-link", text: job.id }),
      ` (${job.state}).`);
    done.hidden = false;
    form.elements.id.value = "";
  } catch (error) {
    done.hidden = true;
    const fields = { ...error.fields };
    // 409: a duplicate id, or `after` names a job the queue does not hold.
    if (error.status === 409) fields[error.message.includes("after:") ? "after" : "id"] = error.message;
    showFieldErrors(form, fields);
    const shown = Object.keys(fields).some((name) => form.querySelector(`[data-error-for="${CSS.escape(name)}"]`));
    formError.textContent = shown ? "Please correct the fields marked below." : error.message;
    formError.hidden = false;
  } finally {
    button.disabled = false;
  }
});
