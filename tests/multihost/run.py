"""`make multihost`: three hosts as network namespaces against a private PostgreSQL cluster, four scenarios.

    .venv/bin/python tests/multihost/run.py [--only NAME ...] [--out tests/multihost/results]

Scenarios (scenarios.py): a host partitioned for longer than lease_timeout, one partitioned for less, the server
restarted under load, packet loss on one host's link. Writes latest.json (every figure) and latest.md (a summary
for docs/reliability.md) to --out; exit status 1 when a check failed, 0 with a message when the lab cannot be
built here (not root, no iproute2, no PostgreSQL server binaries).
"""

import argparse
import json
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lab import Lab, missing_requirements  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402


def _interrupted(number, frame):
    raise KeyboardInterrupt(f"signal {number}")  # so that the lab's close() runs


def summary_markdown(results):
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(results["finished_at"]))
    lines = [f"`make multihost`, {when}, {results['machine']['cpus']} CPUs, {results['seconds']} s in all:", "",
             "| scenario | result | figures |", "|---|---|---|"]
    for name, report in results["scenarios"].items():
        verdict = "ok" if report["ok"] else "**FAILED**: " + "; ".join(report["failures"])[:300]
        figures = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in report["figures"].items()
                            if key != "reruns")
        lines.append(f"| {name.replace('_', ' ')} | {verdict} | {figures} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="run only these scenarios")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    reason = missing_requirements()
    if reason:
        print(f"make multihost: skipped: the lab {reason}")
        return 0
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _interrupted)
    started = time.monotonic()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "kernel": platform.release()}, "scenarios": {}}
    with Lab() as lab:
        print(f"lab: hosts {', '.join(lab.host_address(n) for n in (1, 2, 3))}, PostgreSQL on"
              f" {lab.server_address}:5432 ({lab.dir})", flush=True)
        for name in args.only or SCENARIOS:
            print(f"--- {name}", flush=True)
            began = time.monotonic()
            lab.scenario = name
            try:
                verdict = SCENARIOS[name](lab)
                report = {"ok": verdict.ok, "failures": verdict.failures, "figures": verdict.figures}
            except Exception as error:  # a scenario that could not finish fails; the others still run
                traceback.print_exc()
                report = {"ok": False, "failures": [f"{type(error).__name__}: {error}"], "figures": {}}
            finally:
                for number in list(lab.workers):
                    lab.stop_workers(number)
            report["wall_seconds"] = round(time.monotonic() - began, 1)
            results["scenarios"][name] = report
            print(json.dumps(report, indent=1), flush=True)
            if not report["ok"]:
                for number in (1, 2, 3):
                    tail = lab.worker_log(number)
                    if tail.exists():
                        print(f"--- host-{number} log (last lines)")
                        print("\n".join(tail.read_text(errors="replace").splitlines()[-15:]))
    results["seconds"] = round(time.monotonic() - started, 1)
    results["finished_at"] = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "latest.md").write_text(summary_markdown(results))
    print(summary_markdown(results))
    return 0 if all(report["ok"] for report in results["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
