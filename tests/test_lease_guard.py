"""The lease guard stops a job when its worker's lease runs out, whatever the worker's loop is doing (a renewal
blocked on a cut network): make multihost saw a partitioned worker's job outlive its lease by 1-2 s before."""

import subprocess
import time

from queuectl_worker.lease_guard import MARGIN_SHARE, LeaseGuard


def _job():
    # A process group of its own with a child, as a job's shell is.
    return subprocess.Popen(["/bin/sh", "-c", "sleep 60 & wait"], start_new_session=True)


def test_a_job_whose_lease_is_not_renewed_is_killed_before_the_lease_ends():
    guard, job = LeaseGuard(), _job()
    try:
        renewed_at = time.monotonic()
        guard.arm(job.pid, renewed_at, 3.0)
        job.wait(timeout=10)
        stopped_at = time.monotonic()
        assert job.returncode < 0
        assert stopped_at < renewed_at + 3.0  # before the lease's end, not after
        assert stopped_at >= renewed_at + 3.0 * (1 - MARGIN_SHARE) - 0.05
        assert guard.disarm() is True
    finally:
        job.kill()
        job.wait()


def test_renewals_push_the_guards_deadline_and_disarming_spares_the_job():
    guard, job = LeaseGuard(), _job()
    try:
        guard.arm(job.pid, time.monotonic(), 1.0)
        for _ in range(4):  # 2 s in all, twice the lease, renewed every half second
            time.sleep(0.5)
            guard.renewed(time.monotonic(), 1.0)
        assert job.poll() is None
        assert guard.disarm() is False
        time.sleep(1.2)
        assert job.poll() is None  # disarmed: never killed
    finally:
        job.kill()
        job.wait()


def test_a_renewal_counts_from_the_start_of_its_call_not_its_end():
    guard, job = LeaseGuard(), _job()
    try:
        call_started = time.monotonic() - 1.5  # a renewal call that took 1.5 s to get through
        guard.arm(job.pid, call_started, 3.0)
        job.wait(timeout=10)
        assert time.monotonic() < call_started + 3.0
    finally:
        job.kill()
        job.wait()
