"""The `queuectl` entry point: the command group (group.py) behind one error handler."""

import os
import sys

from . import quick


def main():
    """Entry point: run the CLI; no user error ever ends in a traceback."""
    try:
        if not quick.answer(sys.argv[1:]):  # `status [--json]` is answered without loading click
            from .group import cli

            cli.main(prog_name="queuectl")
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as error:  # a bug: say so in one line unless asked for the details
        if os.environ.get("QUEUECTL_DEBUG"):
            raise
        import click

        click.echo(f"Error: internal error: {error!r} (set QUEUECTL_DEBUG=1 for a traceback)", err=True)
        sys.exit(1)


def __getattr__(name):
    """`cli`, the click group, loaded on first use (`from queuectl_cli.main import cli` keeps working)."""
    if name == "cli":
        from .group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
