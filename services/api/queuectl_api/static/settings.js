// View and change the settings; the server checks each value as `queuectl config set` does.
import { api, showFieldErrors, toast } from "./api.js";

const form = document.getElementById("settings-form");
const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
let saved = {};

// Numbers go as JSON numbers; other text goes as typed, so that the server's message quotes it.
function typed(input) {
  const text = input.value.trim();
  return input.tagName !== "SELECT" && NUMBER.test(text) ? Number(text) : text;
}

function fill(values) {
  saved = values;
  for (const [name, value] of Object.entries(values)) {
    const input = form.elements.namedItem(name);
    if (input) input.value = String(value);
  }
}

async function load() {
  const { data } = await api("GET", "/settings");
  fill(data);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const formError = document.getElementById("form-error");
  const changes = {};
  for (const [name, value] of Object.entries(saved)) {
    const input = form.elements.namedItem(name);
    if (input && typed(input) !== value) changes[name] = typed(input);
  }
  if (Object.keys(changes).length === 0) {
    toast("Nothing changed.");
    return;
  }
  try {
    const { data } = await api("PUT", "/settings", changes);
    fill(data);
    showFieldErrors(form, {});
    formError.hidden = true;
    toast(`Saved: ${Object.keys(changes).join(", ")}.`, "success");
  } catch (error) {
    showFieldErrors(form, error.fields);
    formError.textContent = error.fields && Object.keys(error.fields).length ? "Nothing was saved: please correct the values marked below." : error.message;
    formError.hidden = false;
  }
});

load().catch((error) => toast(error.message, "error"));
