"""Durations as people write them: `7d`, `12h`, `90m`, `30s`, `2w`, or a plain number of seconds."""

import re

from .errors import InvalidInput

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Six digits of any unit stay below MAXIMUM_SECONDS, so every text this pattern accepts is valid.
PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,6})?[smhdw]?$"
MAXIMUM_SECONDS = 10**12
_PATTERN = re.compile(PATTERN)


def parse_duration(value, name):
    """Seconds (int when whole) from a number >= 0 or a text like '7d'; InvalidInput naming `name` otherwise."""
    seconds = None
    if isinstance(value, str):
        if _PATTERN.fullmatch(value):
            unit = value[-1] if value[-1] in UNITS else "s"
            seconds = float(value.rstrip("smhdw")) * UNITS[unit]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value  # NaN, infinities and integers beyond a float's range fail the bounds below
    if seconds is None or not 0 <= seconds <= MAXIMUM_SECONDS:
        try:
            shown = repr(value)
        except (RecursionError, ValueError):  # nested too deep, or an integer of over 4300 digits
            shown = "a value too large to show"
        raise InvalidInput(f"{name} must be a duration such as 30s, 90m, 12h, 7d, 2w or a number of seconds >= 0,"
                           f" got {shown}")
    return int(seconds) if float(seconds).is_integer() else seconds

