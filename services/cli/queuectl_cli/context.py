"""What every command shares: the database location, the store (opened on first use), errors."""

import click


class BadInput(click.ClickException):
    """Bad input from the user: 'Error: ...' on stderr and exit 2."""

    exit_code = 2


class Context:
    """ctx.obj: opens the store only when a command needs it, so --help stays instant."""

    def __init__(self, db, api=None):
        self.db = db
        self.api = api  # the API's URL (--api / QUEUECTL_API_URL): the commands then go through it
        self._store = None

    def need_database(self, command):
        """BadInput when the commands go through an API: `command` works on the database itself."""
        if self.api:
            raise BadInput(f"`{command}` needs the database itself, not the API (--api / QUEUECTL_API_URL):"
                           " run it where QUEUECTL_DB reaches the database")

    @property
    def actor(self):
        """Who is acting, for the audit log: cli:USER@HOST (the one place the CLI's commands take it from). USER is
        the name of the process's real uid, not $USER (which anyone sets), or the uid's number where it has no name
        (a container run with --user 1234)."""
        import os
        import pwd
        import socket

        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = str(os.getuid())
        return f"cli:{user}@{socket.gethostname()}"

    @property
    def store(self):
        if self._store is None:
            if self.api:
                import os

                from .remote import RemoteStore

                self._store = RemoteStore(self.api, os.environ.get("QUEUECTL_API_TOKEN"))
            else:
                self._store = self.open(self.db)
        return self._store

    def open(self, location):
        """Open a queue (this command's, or another one such as migrate's target)."""
        from queuectl_core.store import open_store

        return open_store(location)


pass_context = click.make_pass_decorator(Context)
