"""One spawning process of the raw spawn benchmark: `spawner.py SECONDS MODE START_AT`.

Spawns `/bin/sh -c true` one after another until SECONDS have passed, then prints
"COUNT ELAPSED". MODE `plain` is subprocess.run with no options (the machine's limit, what
"raw" means); `runner` is queuectl's own JobProcess as the worker uses it; `worker`,
`worker-no-preexec` and `worker-setpriv` take its options apart (own session, PR_SET_PDEATHSIG
through a Python preexec_fn or through setpriv(1), output into a temp file, a copied environment).
"""

import ctypes
import os
import subprocess
import sys
import tempfile
import time


def main():
    seconds, mode, start_at = float(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def pdeathsig():
        libc.prctl(1, 9, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    while time.time() < start_at:  # both spawners begin together
        time.sleep(0.001)
    count = 0
    begin = time.perf_counter()
    deadline = begin + seconds
    while time.perf_counter() < deadline:
        if mode == "plain":
            subprocess.run(["/bin/sh", "-c", "true"])
        elif mode == "worker":
            env = dict(os.environ)
            env["QUEUECTL_JOB_ID"] = str(count)
            with tempfile.TemporaryFile() as output:
                subprocess.Popen(["/bin/sh", "-c", "true"], stdin=subprocess.DEVNULL, stdout=output,
                                 stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                 preexec_fn=pdeathsig).wait()
        elif mode == "worker-no-preexec":
            env = dict(os.environ)
            env["QUEUECTL_JOB_ID"] = str(count)
            with tempfile.TemporaryFile() as output:
                subprocess.Popen(["/bin/sh", "-c", "true"], stdin=subprocess.DEVNULL, stdout=output,
                                 stderr=subprocess.STDOUT, env=env, start_new_session=True).wait()
        elif mode == "runner":  # queuectl's own runner, as the worker calls it
            from queuectl_worker.runner import JobProcess

            job = JobProcess("true", {"QUEUECTL_JOB_ID": str(count)})
            while not job.wait(1.0):
                pass
            job.end_leftovers()
            job.output_tail()
            job.close()
        elif mode == "worker-setpriv":
            env = dict(os.environ)
            env["QUEUECTL_JOB_ID"] = str(count)
            with tempfile.TemporaryFile() as output:
                subprocess.Popen(["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "/bin/sh", "-c", "true"],
                                 stdin=subprocess.DEVNULL, stdout=output,
                                 stderr=subprocess.STDOUT, env=env, start_new_session=True).wait()
        else:
            raise SystemExit(f"unknown mode {mode}")
        count += 1
    print(count, time.perf_counter() - begin)


if __name__ == "__main__":
    main()
