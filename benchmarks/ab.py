"""Same-run A/B of this checkout against older code: the code of a revision, unpacked with `git archive`, run in
child processes whose PYTHONPATH puts it first (workers and CLI started by them included), alternating A B B A."""

import json
import os
import statistics
import subprocess
import sys

from common import scratch_dir

HERE = os.path.dirname(os.path.abspath(__file__))


def base_tree():
    """(revision, PYTHONPATH) of QUEUECTL_BENCH_BASE (default `git merge-base HEAD main`), unpacked once."""
    revision = os.environ.get("QUEUECTL_BENCH_BASE") or subprocess.run(
        ["git", "merge-base", "HEAD", "main"], capture_output=True, text=True, cwd=HERE, check=True).stdout.strip()
    directory = scratch_dir("base-code")
    archive = subprocess.run(["git", "archive", revision, "shared", "services"], capture_output=True,
                             cwd=os.path.dirname(HERE), check=True).stdout
    subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
    paths = [os.path.join(directory, "shared")] + [os.path.join(directory, "services", name)
                                                    for name in ("cli", "worker", "api")]
    return revision, os.pathsep.join(paths)


def in_child(code, pythonpath):
    """The JSON that `code` (run with the bench's modules importable) prints last, in a child process whose
    queuectl comes from `pythonpath` (None: this checkout)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run([sys.executable, "-c", f"import sys, json; sys.path.insert(0, {HERE!r}); {code}"],
                          capture_output=True, text=True, env=env, timeout=900, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(code, pythonpath, rounds, key):
    """{'base', 'ours': medians of `key` of `code`'s results, 'rounds'}, A B B A per round."""
    found = {"base": [], "ours": []}
    for _ in range(rounds):
        for side in ("base", "ours", "ours", "base"):
            found[side].append(in_child(code, pythonpath if side == "base" else None)[key])
    return {"base": statistics.median(found["base"]), "ours": statistics.median(found["ours"]), "rounds": found}


THROUGHPUT = "import systems; print(json.dumps(systems.throughput('queuectl', 2, {jobs})))"
BULK = "import enqueue; print(json.dumps(enqueue.bulk_file({jobs}, runs=1)))"
CLAIMS = ("import claims; path, _ = claims.build({jobs});"
          " print(json.dumps(claims.measure({{'queue': path}}, rounds=3)['queue']))")


def run_all(quick):
    """The A/B figures: no-op throughput, bulk enqueue, claim + complete at 1k, each ours against the base."""
    revision, pythonpath = base_tree()
    rounds = 1 if quick else 3
    return revision, {
        "throughput": compare(THROUGHPUT.format(jobs=500 if quick else 2000), pythonpath, rounds,
                              "jobs_per_second"),
        "bulk": compare(BULK.format(jobs=20_000 if quick else 100_000), pythonpath, rounds, "jobs_per_second"),
        "claims": compare(CLAIMS.format(jobs=1000), pythonpath, rounds, "median_us"),
    }
