"""Reading many jobs, one JSON object per line, for `enqueue -` and `enqueue --file`."""

import codecs

from queuectl_core.errors import InvalidInput
from queuectl_core.validation import parse_job_json


def parse_lines(raw):
    """(line number, JobSpec) for each non-blank line of `raw` bytes; InvalidInput names the line."""
    specs = []
    if raw.startswith(codecs.BOM_UTF8):  # files saved by some Windows editors start with one
        raw = raw[len(codecs.BOM_UTF8):]
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"line {number}: not valid UTF-8") from None
        try:
            specs.append((number, parse_job_json(text)))
        except InvalidInput as error:
            raise InvalidInput(f"line {number}: {error}") from None
    return specs
