"""The Python client installs on its own: its wheel and queuectl-core's (built as `make dist` builds them) in a fresh
venv, without Flask, gunicorn or any service's code, enqueue on a SQLite file and through a real gunicorn."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import urllib3
from api.api_support import TOKEN, start_gunicorn

REPO = Path(__file__).resolve().parents[1]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]

SCRIPT = """
import importlib.util, json, sys
from queuectl import Queue, InvalidJob
absent = [name for name in ("flask", "gunicorn", "queuectl_worker", "queuectl_cli", "queuectl_api", "click")
          if importlib.util.find_spec(name) is not None]
mode, where = sys.argv[1], sys.argv[2]
with (Queue(db=where) if mode == "db" else Queue(api=where, token=sys.argv[3])) as queue:
    first = queue.enqueue("echo one", id="one")
    ids = queue.enqueue_many([{"command": "echo two", "after": ["one"]}, {"command": "echo three"}])
    try:
        queue.enqueue("echo bad", max_retries=-1)
    except InvalidJob as error:
        refused = str(error)
    print(json.dumps({"present": absent, "first": first["state"], "ids": len(ids), "refused": refused,
                      "pending": queue.status()["jobs"]["pending"], "module": __import__("queuectl").__file__}))
"""


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory):
    """A fresh venv holding only the client's wheel, queuectl-core's and urllib3."""
    where = tmp_path_factory.mktemp("dist")
    wheels, venv = where / "wheels", where / "venv"
    subprocess.run([*PIP, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), "./shared",
                    "./clients/python"], cwd=REPO, check=True, capture_output=True, timeout=300)
    built = sorted(path.name for path in wheels.iterdir())
    assert built == ["queuectl-0.1.0-py3-none-any.whl", "queuectl_core-0.1.0-py3-none-any.whl"], built
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # The outer pip installs into the new venv (--python): no pip of its own to set up there, which is most of the
    # time a venv takes. urllib3 comes from pip's cache (or the index) at the version the tests use.
    subprocess.run([*PIP, "--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-deps",
                    *map(str, wheels.iterdir()), f"urllib3=={urllib3.__version__}"],
                   check=True, capture_output=True, timeout=300)
    return venv / "bin" / "python"


def run_in(python, tmp_path, *args):
    result = subprocess.run([str(python), "-c", SCRIPT, *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check(answer, venv_python):
    assert answer["present"] == []  # no Flask, gunicorn, click or service code in the client's venv
    assert answer["module"].startswith(str(venv_python.parents[1]))  # the wheel's copy, not the repository's
    assert (answer["first"], answer["ids"], answer["pending"]) == ("pending", 2, 3)
    assert "max_retries" in answer["refused"]


def test_the_client_wheel_alone_enqueues_on_a_sqlite_file(client_venv, tmp_path):
    check(run_in(client_venv, tmp_path, "db", str(tmp_path / "queue.db")), client_venv)


def test_the_client_wheel_alone_enqueues_through_the_api(client_venv, tmp_path, processes):
    location = tmp_path / "served.db"
    base = start_gunicorn(processes, location)
    check(run_in(client_venv, tmp_path, "api", base, TOKEN), client_venv)
