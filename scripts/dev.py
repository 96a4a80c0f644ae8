"""`make dev`: the API and dashboard (gunicorn) plus N workers on a local SQLite file, in the foreground.

Creates a token in DIR/api-token (mode 0600) the first time, prints the dashboard URL and how to log in,
and on Ctrl-C (or SIGTERM) stops everything gracefully: gunicorn finishes its requests, every worker
finishes its running job. A second Ctrl-C stops at once (running jobs are handed back).
"""

import argparse
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _stop_with_parent():
    """In the child: get SIGTERM (a graceful stop) if the launcher dies, even by SIGKILL (Linux)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def read_or_create_token(path):
    """The dev token in `path`, created (readable by the owner only) when absent."""
    if not path.exists() or not path.read_text().strip():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def port_is_free(bind):
    """True when nothing listens on `bind` (host:port) yet."""
    host, _, port = bind.rpartition(":")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]") or "127.0.0.1", int(port)))
        except OSError:
            return False
    return True


def wait_until_healthy(url, process, timeout=30):
    """Wait for `url` to answer 200 while `process` runs; False if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


class Launcher:
    """Owns gunicorn and the worker supervisor, each in its own session so that the terminal's Ctrl-C
    reaches only this process, which then stops them in order (one SIGTERM each: a graceful stop)."""

    def __init__(self, args):
        self.args = args
        self.children = {}
        self.signals = 0

    def _on_signal(self, number, frame):
        self.signals += 1

    def start(self, name, command, env):
        """Start one child in its own session."""
        self.children[name] = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True,
                                               preexec_fn=_stop_with_parent)

    def stop(self):
        """SIGTERM every child, wait for them; a further Ctrl-C (or 60 s) kills what is left."""
        for process in self.children.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        seen = self.signals
        deadline = time.monotonic() + 60
        while any(p.poll() is None for p in self.children.values()):
            if self.signals > seen or time.monotonic() > deadline:
                for name, process in self.children.items():
                    if process.poll() is None:
                        # A second signal makes the workers kill their jobs and hand them back at once.
                        process.send_signal(signal.SIGINT if name == "workers" else signal.SIGKILL)
                seen = self.signals
                deadline = time.monotonic() + 15
            time.sleep(0.1)

    def run(self):
        """Start, print how to log in, wait for Ctrl-C or a child's exit, stop; return the exit status."""
        args = self.args
        directory = (REPO / args.dir).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        token = read_or_create_token(directory / "api-token")
        bind = os.environ.get("QUEUECTL_API_BIND", "127.0.0.1:8080")
        if not port_is_free(bind):
            print(f"make dev: {bind} is in use (another `make dev`?). Stop it, or choose another address:\n"
                  f"    QUEUECTL_API_BIND=127.0.0.1:8081 make dev", file=sys.stderr)
            return 1
        env = {**os.environ, "QUEUECTL_DB": str(directory / "queuectl.db"), "QUEUECTL_API_TOKEN": token,
               "QUEUECTL_API_BIND": bind,
               "QUEUECTL_API_ACCESS_LOG": os.environ.get("QUEUECTL_API_ACCESS_LOG", str(directory / "access.log"))}
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self._on_signal)
        self.start("api", [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "queuectl_api:create_app()"], env)
        # The workers have no use for the token; their jobs could read it from /proc/<worker pid>/environ.
        worker_env = {key: value for key, value in env.items() if key != "QUEUECTL_API_TOKEN"}
        self.start("workers", [str(BIN / "queuectl-worker"), "--count", str(args.workers)], worker_env)
        url = f"http://{bind}"
        if not wait_until_healthy(f"{url}/healthz", self.children["api"]):
            print("make dev: the API did not start (see its messages above)", file=sys.stderr)
            self.stop()
            return 1
        print(f"\n  queuectl dev: dashboard {url}  ({args.workers} workers, database {env['QUEUECTL_DB']})\n"
              f"  log in with the token in {directory / 'api-token'}:\n      {token}\n"
              f"  API:  curl -H \"Authorization: Bearer $(cat {args.dir}/api-token)\" {url}/api/v1/stats\n"
              f"  CLI:  QUEUECTL_DB={env['QUEUECTL_DB']} {BIN / 'queuectl'} status\n"
              f"  Ctrl-C stops everything (running jobs finish first; Ctrl-C twice: at once).\n", flush=True)
        status = 0
        while not self.signals:
            exited = [name for name, process in self.children.items() if process.poll() is not None]
            if exited:
                print(f"make dev: {exited[0]} exited (status {self.children[exited[0]].returncode}); stopping",
                      file=sys.stderr)
                status = 1
                break
            time.sleep(0.2)
        print("make dev: stopping (gunicorn, then workers finish their jobs)...", flush=True)
        self.stop()
        print("make dev: stopped", flush=True)
        return status


def main(argv=None):
    """Parse the options and run the launcher."""
    parser = argparse.ArgumentParser(prog="dev.py", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "2")), help="worker processes")
    parser.add_argument("--dir", default=".dev", help="directory of the database and the token (default .dev)")
    sys.exit(Launcher(parser.parse_args(argv)).run())


if __name__ == "__main__":
    main()
