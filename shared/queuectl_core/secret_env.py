"""Keeping the service's secrets out of what a job can read.

A job runs as its worker's user, so it can read `/proc/PID/environ` of its worker and of the worker's supervisor:
the environment block a process was started with, which later changes to `os.environ` never alter. Removing a
secret from `os.environ` is therefore not enough: the worker programs start themselves again (exec) without them.
A secret the worker itself needs (`PGPASSWORD`: libpq reads it with getenv) is handed over through an inherited
pipe and put back into `os.environ` only, where libpq finds it and `/proc/PID/environ` does not show it.
"""

import json
import os
import stat

# Never given to a worker: they open the API (operator and viewer), sign its sessions, or log in to PostgreSQL.
SECRET_VARIABLES = ("QUEUECTL_API_TOKEN", "QUEUECTL_API_READ_TOKEN", "QUEUECTL_SESSION_SECRET", "PGPASSWORD")
# Of those, the ones the worker needs itself: handed over outside the environment block.
HANDED_OVER = ("PGPASSWORD",)
HANDOVER_FD_VARIABLE = "QUEUECTL_SECRETS_FD"
_HANDOVER_MAX_BYTES = 60 * 1024  # below a pipe's 64 KiB: written before exec, with nobody reading yet


def has_secrets(environ=None):
    """True when `environ` (default: os.environ) holds one of SECRET_VARIABLES."""
    environ = os.environ if environ is None else environ
    return any(name in environ for name in SECRET_VARIABLES)


def without_secrets(environ):
    """A copy of `environ` without SECRET_VARIABLES and the hand-over descriptor's variable."""
    return {key: value for key, value in environ.items()
            if key not in SECRET_VARIABLES and key != HANDOVER_FD_VARIABLE}


def exec_without_secrets(argv):
    """Replace this process with `argv` (argv[0] a path), its environment without SECRET_VARIABLES; those of
    HANDED_OVER travel through a pipe that `take_handed_secrets()` reads in the new program. Never returns."""
    environ = without_secrets(os.environ)
    handed = {name: os.environ[name] for name in HANDED_OVER if name in os.environ}
    if handed:
        data = json.dumps(handed).encode()
        if len(data) > _HANDOVER_MAX_BYTES:
            raise ValueError(f"{', '.join(handed)} too long to hand over ({len(data)} bytes)")
        read_end, write_end = os.pipe()
        os.write(write_end, data)
        os.close(write_end)
        os.set_inheritable(read_end, True)
        environ[HANDOVER_FD_VARIABLE] = str(read_end)
    os.execve(argv[0], argv, environ)


def take_handed_secrets():
    """In a program started by exec_without_secrets: put the handed-over secrets into os.environ (not into the
    environment block) and close the pipe. Does nothing when none were handed over."""
    fd_text = os.environ.pop(HANDOVER_FD_VARIABLE, None)
    if fd_text is None:
        return
    try:
        fd = int(fd_text)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return  # not a hand-over of ours (a stale variable): nothing to take
        with os.fdopen(fd, "rb") as pipe:
            handed = json.loads(pipe.read(_HANDOVER_MAX_BYTES + 1) or b"{}")
    except (ValueError, OSError):
        return  # not a hand-over of ours (a stale variable): nothing to take
    for name, value in handed.items():
        if name in HANDED_OVER and isinstance(value, str):
            os.environ[name] = value
