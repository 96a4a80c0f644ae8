"""The `queuectl` command group and its error handling."""

from collections.abc import MutableMapping
from contextlib import contextmanager
from importlib import import_module

import click
from queuectl_core.errors import InvalidInput, QueueError

from .context import BadInput, Context
from .terminal import visible

# Every command: its name, then the module (of this package) and the attribute that define it.
# Only the module of the command being run is imported: start-up is most of a command's time.
COMMANDS = {
    "audit": ("audit", "audit"),
    "cancel": ("control", "cancel"),
    "completion": ("completion", "completion"),
    "config": ("settings", "config"),
    "dlq": ("jobs", "dlq"),
    "enqueue": ("jobs", "enqueue"),
    "list": ("jobs", "list_jobs"),
    "logs": ("logs", "logs"),
    "migrate": ("migrate", "migrate"),
    "pause": ("control", "pause"),
    "purge": ("control", "purge"),
    "queue": ("queues", "queue"),
    "rerun": ("schedules", "rerun"),
    "resume": ("control", "resume"),
    "schedule": ("schedules", "schedule"),
    "show": ("jobs", "show"),
    "status": ("jobs", "status"),
    "wait": ("control", "wait_for_jobs"),
    "worker": ("workers", "worker"),
}


class LazyCommands(MutableMapping):
    """A group's `commands` that knows every name but imports a command's module on first look-up.

    click reads `commands` for everything (running, --help, completion, "Did you mean"), so the
    group itself stays a plain click group."""

    def __init__(self, where):
        self._where = dict(where)
        self._loaded = {}

    def __getitem__(self, name):
        if name not in self._loaded:
            module, attribute = self._where[name]  # KeyError: no such command
            self._loaded[name] = getattr(import_module(f".{module}", __package__), attribute)
        return self._loaded[name]

    def __setitem__(self, name, command):
        self._where.setdefault(name, None)
        self._loaded[name] = command

    def __delitem__(self, name):
        del self._where[name]
        self._loaded.pop(name, None)

    def __iter__(self):
        return iter(self._where)

    def __len__(self):
        return len(self._where)


class QueueGroup(click.Group):
    """Turns domain errors into one-line messages: bad input exits 2, the rest 1. Every message, click's own
    included ("No such command ..."), shows the controls in the user data it quotes as escapes."""

    def make_context(self, *args, **kwargs):
        with messages_made_visible():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with messages_made_visible():
            return self._invoke(ctx)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InvalidInput as error:
            raise BadInput(str(error)) from None
        except QueueError as error:  # a failing database included: the store raises its own DatabaseError
            raise click.ClickException(str(error)) from None


@contextmanager
def messages_made_visible():
    """Show the controls in a click error's message as escapes: it often quotes what the user typed (an id, a
    command name, JSON) or a database's text, which click prints raw to the terminal."""
    try:
        yield
    except click.ClickException as error:
        error.message = visible(error.message)
        raise


@click.group(cls=QueueGroup, commands=LazyCommands(COMMANDS), context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", metavar="PATH",
              help="SQLite file or postgresql:// URL of the queue [env: QUEUECTL_DB; default"
                   " ~/.local/share/queuectl/queuectl.db].")
@click.option("--api", metavar="URL",
              help="Work through the HTTP API at URL instead of the database (token from QUEUECTL_API_TOKEN;"
                   " every command but `worker start` and `migrate`) [env: QUEUECTL_API_URL].")
@click.version_option(package_name="queuectl-cli", prog_name="queuectl")
@click.pass_context
def cli(ctx, db, api):
    """queuectl: a persistent queue of shell commands with retries and a dead letter queue."""
    if api is not None and db is not None:
        raise click.UsageError("give --db or --api, not both")
    if api is None and db is None:  # --db on the command line wins over QUEUECTL_API_URL
        import os

        api = os.environ.get("QUEUECTL_API_URL") or None
    ctx.obj = Context(db, api)

