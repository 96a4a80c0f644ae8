"""Shell completion (click's) for bash, zsh and fish, with job ids completed from the queue."""

import click

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VARIABLE = "_QUEUECTL_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx, shell):
    """Print the completion script for SHELL; e.g. in ~/.bashrc: eval "$(queuectl completion bash)"."""
    from click.shell_completion import get_completion_class

    root = ctx.find_root()
    script = get_completion_class(shell)(root.command, {}, root.info_name or "queuectl", COMPLETE_VARIABLE)
    click.echo(script.source())


def complete_job_id(ctx, param, incomplete):
    """Ids of recent jobs starting with `incomplete` (nothing at all if the queue cannot be read)."""
    try:
        from queuectl_core.store import open_store

        store = open_store(ctx.find_root().params.get("db"))
        try:
            jobs, _ = store.search_jobs(query=incomplete or None, limit=200)
        finally:
            store.close()
        return [job["id"] for job in jobs if job["id"].startswith(incomplete)][:50]
    except Exception:  # completion must never print an error into the user's command line
        return []
