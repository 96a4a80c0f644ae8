"""Per-field validation messages, so that a form can show every mistake next to its field at once.

The checks themselves are the shared package's (the CLI's): each field is checked on its own through them."""

from queuectl_core import settings as settings_module
from queuectl_core.errors import InvalidInput
from queuectl_core.validation import KEYS, check_job


def job_field_errors(job):
    """{key: message} for every bad key of a decoded JSON job object (empty when each key is fine alone)."""
    errors = {}
    for key, value in job.items():
        if key not in KEYS:
            errors[key] = f"unknown key '{key}' (allowed: {', '.join(KEYS)})"
            continue
        probe = {"command": value} if key == "command" else {"command": "true", key: value}
        try:
            check_job(probe)
        except InvalidInput as error:
            errors[key] = str(error)
    if "command" not in job:
        errors["command"] = "command is required"
    if "run_at" in job and "delay" in job:
        errors.setdefault("delay", "run_at and delay cannot both be given")
    return errors


def settings_field_errors(values):
    """{name: message} for every setting of `values` that `config set` would refuse.

    JSON has numbers, so a numeric setting must be one: the text "5" is refused (the command line's
    text goes through the same check, but the API's types stay exact as its OpenAPI document says)."""
    errors = {}
    for name, value in values.items():
        try:
            setting = settings_module.SETTINGS.get(name)
            numeric = setting is not None and setting.kind in ("number", "integer")  # a duration may be '3600'
            if numeric and isinstance(value, str) and _is_number(value):
                raise InvalidInput(f"{name} must be a JSON number, not the text {value!r}")
            settings_module.check(name, value)
        except InvalidInput as error:
            errors[name] = str(error)
    return errors


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
