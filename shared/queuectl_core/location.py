"""Where the queue lives: the one place that reads QUEUECTL_DB and knows the default."""

import os

POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def database_location(given=None):
    """The queue's database: `given` (a --db option, a test's setting), else QUEUECTL_DB, else the default SQLite
    file. A PostgreSQL URL comes back as it is; a SQLite location as an absolute path (sqlite:/// URLs too)."""
    location = given or os.environ.get("QUEUECTL_DB") or ""
    if location.startswith(POSTGRES_PREFIXES):
        return location
    if location.startswith("sqlite:///"):
        location = location[len("sqlite:///") - 1:]  # keep the leading slash: an absolute path
    elif location.startswith("sqlite://"):
        location = location[len("sqlite://"):]
    if not location:
        location = default_path()
        # Private (0700): commands and their output may hold secrets that other local users must not read.
        os.makedirs(os.path.dirname(location), mode=0o700, exist_ok=True)
    return os.path.abspath(location)


def is_postgres(location):
    """True when `location` (as database_location gives it) names a PostgreSQL database."""
    return location.startswith(POSTGRES_PREFIXES)


def default_path():
    """The SQLite file used when neither --db nor QUEUECTL_DB says otherwise."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "queuectl", "queuectl.db")
