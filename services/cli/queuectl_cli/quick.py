"""`queuectl status [--json]` on SQLite without loading click.

Monitors, scripts and people poll this one command, and loading click is a third of its run (issue 5: <= 50 ms
at 1M jobs). It prints exactly what the click command prints (tests compare the two byte for byte); anything
else, a failure included, is left to the click command, which reports it as it always has.
"""

import os
import sys

# click's shell completion runs when this is set (`_<PROG>_COMPLETE`, see completion.py): leave that to click.
COMPLETE_VARIABLE = "_QUEUECTL_COMPLETE"
STATUS_FORMS = (["status", "--json"], ["status"])


def location(argv):
    """(True, the database location click would give) when `argv` is exactly
    `[--db PATH | --db=PATH] status [--json]`; (False, None) for anything else."""
    form = next((form for form in STATUS_FORMS if argv[-len(form):] == form), None)
    if form is None:
        return False, None
    head = argv[:-len(form)]
    if not head:
        return True, None  # the store finds QUEUECTL_DB or the default
    if len(head) == 2 and head[0] == "--db":
        path = head[1]
    elif len(head) == 1 and head[0].startswith("--db="):
        path = head[0][len("--db="):]
    else:
        return False, None
    if not path or path.startswith("-"):  # odd values: let click decide what they mean
        return False, None
    return True, path


def answer(argv):
    """Print `queuectl status [--json]` for `argv` and return True; or print nothing and return False."""
    matched, where = location(argv)
    if not matched or COMPLETE_VARIABLE in os.environ or sys.stdout is None:
        return False
    if os.environ.get("QUEUECTL_API_URL") and where is None:
        return False  # the status of a remote queue: the click command asks the API
    from queuectl_core.location import database_location, is_postgres
    from queuectl_core.store import open_store

    if is_postgres(database_location(where)):
        return False  # psycopg's start-up dwarfs click's, and a connection that fails must not be tried twice
    try:
        store = open_store(where)
        summary = store.status()
        if argv[-1] == "--json":
            import json

            from .terminal import json_visible

            # What output.print_json prints: click.echo of this text.
            text = json_visible(json.dumps(summary, indent=2, ensure_ascii=False)) + "\n"
        else:
            from .views import status_lines  # its tables show controls in user data as escapes

            text = "".join(line + "\n" for line in status_lines(
                summary, store.paused_since() if summary["paused"] else None))
    except Exception:
        return False  # click's command reports it (a read of a local file: trying again costs nothing)
    if not text.isascii():
        return False  # how other characters are written is click.echo's business (its stream handling)
    sys.stdout.write(text)
    sys.stdout.flush()
    return True
