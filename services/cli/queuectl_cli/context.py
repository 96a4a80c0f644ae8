"""What every command shares: the database location, the store (opened on first use), errors."""

import click


class BadInput(click.ClickException):
    """Bad input from the user: 'Error: ...' on stderr and exit 2."""

    exit_code = 2


class Context:
    """ctx.obj: opens the store only when a command needs it, so --help stays instant."""

    def __init__(self, db):
        self.db = db
        self._store = None

    @property
    def store(self):
        if self._store is None:
            from queuectl_core.store import open_store

            self._store = open_store(self.db)
        return self._store


pass_context = click.make_pass_decorator(Context)
