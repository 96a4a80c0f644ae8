"""The runtime settings: their defaults and the one place that checks a new value.

Settings live in the database, so `config set` on one host reaches every worker and container.
"""

import math
from dataclasses import dataclass

from .durations import MAXIMUM_SECONDS, parse_duration
from .errors import InvalidInput


@dataclass(frozen=True)
class Setting:
    """One setting: its kind ('number', 'integer', 'choice' or 'duration'), bounds and meaning."""

    name: str
    kind: str
    default: object
    minimum: float | None = None
    choices: tuple = ()
    help: str = ""


SETTINGS = {
    s.name: s
    for s in (
        Setting("backoff_base", "number", 2, minimum=1,
                help="retry delay is backoff_base ^ attempts seconds"),
        Setting("backoff_max", "number", 3600, minimum=0,
                help="cap on the retry delay, in seconds"),
        Setting("backoff_jitter", "choice", "none", choices=("none", "full"),
                help="'full' draws each retry delay uniformly between 0 and the computed delay"),
        Setting("max_retries", "integer", 3, minimum=0,
                help="retries after the first run, for jobs that do not set their own"),
        Setting("lease_timeout", "number", 30, minimum=1,
                help="seconds without a heartbeat after which a worker's job is handed back"),
        Setting("durability", "choice", "normal", choices=("normal", "full"),
                help="'full' syncs every commit to disk (survives power loss, slower)"),
        Setting("retention", "duration", 0, minimum=0,
                help="seconds (or 7d, 12h) after which workers delete completed and cancelled jobs and audit log"
                     " entries; 0 keeps them"),
    )
}

# Upper bounds keep every value inside SQLite's 64-bit integers and sane for a queue.
_MAXIMUM = {"integer": 1_000_000, "number": 10**9, "duration": MAXIMUM_SECONDS}


def defaults():
    """Every setting at its default value."""
    return {name: s.default for name, s in SETTINGS.items()}


def check(name, value):
    """Return `value` as the clean value of setting `name`, or raise InvalidInput.

    Accepts JSON values (from the API) and strings (from the command line) alike.
    """
    setting = SETTINGS.get(name) if isinstance(name, str) else None
    if setting is None:
        raise InvalidInput(f"unknown setting '{name}' (known: {', '.join(SETTINGS)})")
    if setting.kind == "choice":
        if isinstance(value, str) and value in setting.choices:
            return value
        raise InvalidInput(f"{name} must be one of {', '.join(setting.choices)}, got {_show(value)}")
    if setting.kind == "duration":
        return parse_duration(value, name)
    number = _as_number(value, integer=setting.kind == "integer")
    kind_text = "an integer" if setting.kind == "integer" else "a number"
    if number is None or number < setting.minimum or number > _MAXIMUM[setting.kind]:
        raise InvalidInput(
            f"{name} must be {kind_text} >= {_plain(setting.minimum)}"
            f" and <= {_MAXIMUM[setting.kind]}, got {_show(value)}"
        )
    return number


def _as_number(value, integer):
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            if integer:
                return None
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if integer:
            return None
        if value.is_integer():
            return int(value)
    return value


def _show(value):
    """repr(value), shortened, for an error message."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested too deep, or an integer of over 4300 digits
        return "a value too large to show"
    return text if len(text) <= 80 else text[:77] + "..."


def _plain(number):
    return int(number) if float(number).is_integer() else number
