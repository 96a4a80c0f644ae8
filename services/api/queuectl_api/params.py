"""Reading query parameters and JSON bodies strictly: anything unexpected is a 400 that says why."""

import json
import re

from flask import request
from queuectl_core.errors import InvalidInput

_INTEGER = re.compile(r"-?[0-9]{1,15}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def query_args(allowed):
    """The query parameters as a dict; InvalidInput for an unknown or repeated one."""
    args = {}
    for name, values in request.args.lists():
        if name not in allowed:
            raise InvalidInput(f"unknown query parameter '{_clip(name)}' (allowed: {', '.join(allowed) or 'none'})")
        if len(values) > 1:
            raise InvalidInput(f"query parameter '{name}' is given more than once")
        args[name] = values[0]
    return args


def integer_arg(args, name, default, low, high):
    """Query parameter `name` as an integer in [low, high], or `default` when absent."""
    if name not in args:
        return default
    text = args[name]
    if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
        raise InvalidInput(f"{name} must be an integer from {low} to {high}, got {_clip(text)!r}")
    return int(text)


def choice_arg(args, name, choices, default=None):
    """Query parameter `name`, which must be one of `choices`, or `default` when absent."""
    if name not in args:
        return default
    if args[name] not in choices:
        raise InvalidInput(f"{name} must be one of {', '.join(choices)}, got {_clip(args[name])!r}")
    return args[name]


def text_arg(args, name, max_length):
    """Query parameter `name` as text of at most `max_length` characters (None when absent or empty)."""
    text = args.get(name, "")
    if len(text) > max_length:
        raise InvalidInput(f"{name} must be at most {max_length} characters")
    if _CONTROL.search(text):
        raise InvalidInput(f"{name} must hold no control characters")
    return text or None


def json_body(kind=dict, what="a JSON object"):
    """The request body decoded as JSON of type `kind`; InvalidInput when it is missing or malformed."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise InvalidInput(f"the request body must be {what}, got nothing")
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInput("the request body must be UTF-8 text") from None
    except (ValueError, RecursionError) as error:
        raise InvalidInput(f"the request body is not valid JSON: {_clip(str(error))}") from None
    if not isinstance(value, kind):
        raise InvalidInput(f"the request body must be {what}")
    return value


def has_body():
    """True when the request carries a body that is not only whitespace."""
    return bool(request.get_data(cache=True).strip())


def clip(text, length=80):
    """`text` shortened to `length` characters for an error message."""
    return _clip(text, length)


def _clip(text, length=80):
    return text if len(text) <= length else text[: length - 3] + "..."
