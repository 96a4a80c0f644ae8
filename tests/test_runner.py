"""A job's output as the runner keeps it: read from a pipe while the job writes, its tail kept, stored as text."""

import os
import signal
import time

import pytest
from queuectl_worker.runner import OUTPUT_TAIL_BYTES, JobProcess, output_text


def run_to_end(command, env=None, cwd=None):
    job = JobProcess(command, env or {}, cwd=cwd)
    while not job.wait(30):
        pass
    return job


def test_a_large_output_keeps_exactly_its_last_64_kib_and_says_how_much_came_before():
    job = run_to_end("seq 1 300000")
    try:
        expected = "".join(f"{n}\n" for n in range(1, 300001)).encode()
        text, offset = job.output_snapshot()
        assert offset == len(expected) - OUTPUT_TAIL_BYTES
        assert text == f"[... {offset} earlier bytes not kept ...]\n" + expected[offset:].decode()
    finally:
        job.close()


def test_reading_the_output_while_the_job_writes_never_disturbs_what_it_writes():
    # The file offset is shared with the job's stdout: a reader that moved it would have the job overwrite
    # its own earlier lines.
    job = JobProcess("i=0; while [ $i -lt 4000 ]; do i=$((i+1)); echo line$i; done", {})
    try:
        while not job.wait(0.001):
            job.output_snapshot()
        assert job.output_snapshot()[0] == "".join(f"line{n}\n" for n in range(1, 4001))
    finally:
        job.close()


def test_a_large_output_costs_the_runner_its_tail_only_and_every_byte_is_counted():
    job = run_to_end("head -c 20000000 /dev/zero; echo end")
    try:
        assert job.output_size() == 20_000_004  # offsets stay valid for `logs --follow`
        assert len(job._tail) == OUTPUT_TAIL_BYTES  # the rest was read and dropped, never held
        text, offset = job.output_snapshot()
        assert offset == 20_000_004 - OUTPUT_TAIL_BYTES
        assert text.endswith("\\x00" * 100 + "end\n")  # NUL is stored escaped: PostgreSQL text cannot hold it
    finally:
        job.close()


def test_output_is_bytes_stored_as_text_with_invalid_utf8_and_nul_escaped():
    assert output_text(b"a\x00b\xffc \xc3\xa9 \xed\xa0\x80") == "a\\x00b\\xffc \u00e9 \\xed\\xa0\\x80"
    job = run_to_end("printf 'a\\000b\\377c'")
    try:
        assert job.output_snapshot() == ("a\\x00b\\xffc", 0)
    finally:
        job.close()


def test_a_job_that_closes_its_output_early_is_waited_for_without_spinning():
    # At end of file the pipe stays readable for ever: waiting on it would spin the worker's CPU.
    job = JobProcess("exec >&- 2>&-; sleep 1", {})
    try:
        cpu = time.process_time()
        while not job.wait(10):
            pass
        assert time.process_time() - cpu < 0.5
        assert job.exit_status == 0
    finally:
        job.close()


def test_a_job_that_prints_while_it_is_being_ended_does_not_hang_on_a_full_pipe():
    # It ignores SIGTERM and keeps printing: kill_tree reads meanwhile and kills it after the grace.
    job = JobProcess("trap '' TERM; while :; do echo still-here; done", {})
    try:
        job.wait(0.2)
        started = time.monotonic()
        job.kill_tree(grace=0.5)
        assert time.monotonic() - started < 10
        assert job.exit_status == -signal.SIGKILL
        assert job.output_tail().endswith("still-here\n")
    finally:
        job.close()


def test_the_job_starts_in_the_directory_given_and_a_missing_one_is_an_os_error(tmp_path):
    job = run_to_end("pwd", cwd=str(tmp_path))
    try:
        assert job.output_tail() == f"{tmp_path}\n"
    finally:
        job.close()
    fds_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match="does not exist"):  # JobStartFailed, naming the directory
        JobProcess("pwd", {}, cwd=str(tmp_path / "gone"))
    assert len(os.listdir("/proc/self/fd")) == fds_before  # the pipe was closed, no child left to reap


def test_the_job_sees_the_extra_environment_and_not_the_service_token(monkeypatch):
    monkeypatch.setenv("QUEUECTL_API_TOKEN", "secret")
    import queuectl_worker.runner as runner

    runner._job_environment.cache_clear()
    try:
        job = run_to_end('echo "$QUEUECTL_JOB_ID ${QUEUECTL_API_TOKEN-none}"', {"QUEUECTL_JOB_ID": "j7"})
        assert job.output_tail() == "j7 none\n"
    finally:
        job.close()
        runner._job_environment.cache_clear()
