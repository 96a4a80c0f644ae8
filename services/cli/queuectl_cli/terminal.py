"""Making user data safe to print on a terminal (without click: quick.py uses it too).

A job's command, its output, its last error and a worker's host are written by whoever enqueues or runs jobs.
Printed raw, an escape sequence in them can rewrite the operator's terminal: clear or overwrite lines (ESC [,
carriage return, backspace), set the window title, write the clipboard (OSC 52), or reorder what is shown (bidi
overrides). Every command that prints such data to people passes it through `visible` first; `--json` and `logs`
into a pipe keep the data exactly as stored.
"""

import re

# What a terminal may act on: C0 controls, DEL and C1 controls (U+0080-U+009F: 8-bit CSI, OSC, ...); the
# bidirectional formatting characters (marks, embeddings, overrides, isolates), which reorder the text shown
# around them; and the line and paragraph separators, which some terminals and viewers take as line breaks.
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_IN_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
# Multi-line text (a run's output) keeps its own line structure: newlines (\x0a) and tabs (\x09) stay.
_UNSAFE_IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# JSON text: the characters above that json.dumps(ensure_ascii=False) leaves raw (it escapes C0 itself).
_RAW_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI_AND_SEPARATORS}]")


def _escape(match):
    character = match.group()
    named = _NAMED.get(character)
    if named:
        return named
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value, multiline=False):
    """`value` as text with every character a terminal could act on shown as an escape ("\\x1b", "\\u202e",
    "\\n"); with `multiline`, newlines and tabs stay (a run's output). Other text, non-ASCII letters included,
    is unchanged, and so is a backslash: `--json` tells a stored backslash from an escape."""
    text = value if isinstance(value, str) else str(value)
    return (_UNSAFE_IN_TEXT if multiline else _UNSAFE_IN_LINE).sub(_escape, text)


def json_visible(text):
    """JSON text from json.dumps(ensure_ascii=False) with the controls it leaves raw (DEL, C1, bidi) written as
    \\u escapes: the same JSON value, which no terminal acts on."""
    return _RAW_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
