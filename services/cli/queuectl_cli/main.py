"""The `queuectl` command group and its error handling."""

import os
import sys

import click
from queuectl_core.errors import InvalidInput, QueueError

from .completion import completion
from .context import BadInput, Context
from .jobs import dlq, enqueue, list_jobs, show, status
from .logs import logs
from .migrate import migrate
from .operations import cancel, pause, purge, resume, wait_for_jobs
from .settings import config
from .workers import worker


class QueueGroup(click.Group):
    """Turns domain errors into one-line messages: bad input exits 2, the rest 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InvalidInput as error:
            raise BadInput(str(error)) from None
        except QueueError as error:
            raise click.ClickException(str(error)) from None
        except Exception as error:
            if isinstance(ctx.obj, Context) and ctx.obj.is_database_error(error):
                first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
                raise click.ClickException(f"database error: {first_line}") from None
            raise


@click.group(cls=QueueGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="QUEUECTL_DB", metavar="PATH",
              help="SQLite file of the queue [env: QUEUECTL_DB; default ~/.local/share/queuectl/queuectl.db].")
@click.version_option(package_name="queuectl-cli", prog_name="queuectl")
@click.pass_context
def cli(ctx, db):
    """queuectl: a persistent queue of shell commands with retries and a dead letter queue."""
    ctx.obj = Context(db)


for command in (enqueue, status, list_jobs, show, dlq, config, worker, migrate):
    cli.add_command(command)
for command in (logs, cancel, pause, resume, wait_for_jobs, purge, completion):
    cli.add_command(command)


def main():
    """Entry point: run the CLI; no user error ever ends in a traceback."""
    try:
        cli.main(prog_name="queuectl")
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as error:  # a bug: say so in one line unless asked for the details
        if os.environ.get("QUEUECTL_DEBUG"):
            raise
        click.echo(f"Error: internal error: {error!r} (set QUEUECTL_DEBUG=1 for a traceback)", err=True)
        sys.exit(1)
