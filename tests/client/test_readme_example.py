"""README's Python client example runs as written, against a worker, and prints each job's output."""

import re
import subprocess
import sys
from pathlib import Path

from helpers import QUIET

README = Path(__file__).resolve().parents[2] / "README.md"


def example():
    text = README.read_text()
    found = re.search(r"<!-- python-client-example -->\n```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its marked Python client example"
    return found.group(1)


def test_the_readme_example_runs_a_pipeline_and_prints_its_output(tmp_path, processes):
    (tmp_path / "example.py").write_text(example())
    processes.start_workers(tmp_path / "queue.db", env=QUIET, cwd=str(tmp_path))
    result = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=90)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["fetch: completed: fetched 3 files", "build: completed: built from build"]
    assert re.fullmatch(r".+: completed: report ready", lines[2]) and len(lines) == 3
