"""A job's output as the runner keeps it: in an anonymous file, its tail read while the job writes, trimmed."""

import os

from queuectl_worker.runner import OUTPUT_TAIL_BYTES, JobProcess


def run_to_end(command, env=None):
    job = JobProcess(command, env or {})
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


def test_trimming_frees_the_memory_of_all_but_the_tail_and_keeps_the_tail():
    job = run_to_end("head -c 20000000 /dev/zero; echo end")
    try:
        size = job.output_size()
        assert size == 20_000_004
        assert os.fstat(job._output).st_blocks * 512 >= 20_000_000
        job.trim_output()
        assert job.output_size() == size  # offsets stay valid for `logs --follow`
        assert os.fstat(job._output).st_blocks * 512 <= OUTPUT_TAIL_BYTES + 8192
        text, offset = job.output_snapshot()
        assert text.endswith("\x00" * 100 + "end\n")
        assert offset == size - OUTPUT_TAIL_BYTES
    finally:
        job.close()


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
