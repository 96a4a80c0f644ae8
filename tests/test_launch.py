"""Starting a job's shell, by each of the worker's three ways (launch.py): the same process, every way."""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap

import psutil
import pytest
from helpers import alive, wait_for
from queuectl_worker import launch

METHODS = ("vfork", "setpriv", "preexec")


@pytest.fixture(params=METHODS)
def method(request, monkeypatch):
    """Each way, where this machine has it."""
    if request.param == "vfork" and launch._spawn is None:
        pytest.skip("the C extension queuectl_worker._spawn is not built (no C compiler at install)")
    if request.param == "setpriv" and not launch._setpriv_prefix():
        pytest.skip("setpriv(1) with --pdeathsig is missing")
    monkeypatch.setattr(launch, "method", lambda: request.param)
    return request.param


def run(command, env=None, cwd=None):
    """(return code, output) of `command` started by start_shell, waited for."""
    with tempfile.TemporaryFile() as output:
        child = launch.start_shell(command, output.fileno(), (("PATH", os.environ["PATH"]), ("HOME", "/h")), env,
                                   cwd=cwd)
        code = child.wait(timeout=30)
        output.seek(0)
        return code, output.read().decode()


def test_the_c_extension_is_built_by_make_install():
    # Without it every job costs a second exec (setpriv): half the throughput. A compiler is part of `make dev`.
    assert launch.method() == "vfork", "queuectl_worker._spawn was not built: install gcc and python3-dev"


def test_exit_codes_and_signals_come_back_as_popen_reports_them(method):
    assert run("exit 0")[0] == 0
    assert run("exit 3")[0] == 3
    assert run("kill -TERM $$")[0] == -signal.SIGTERM


def test_stdout_and_stderr_go_to_the_file_and_stdin_is_empty(method):
    code, output = run("echo out; echo err >&2; cat; echo after-cat")
    assert code == 0
    assert output.split() == ["out", "err", "after-cat"]


def test_the_job_gets_exactly_the_environment_given(method):
    code, output = run('echo "$QUEUECTL_JOB_ID|$PATH|$HOME"; env | grep -c "^PATH="',
                       {"QUEUECTL_JOB_ID": "j1", "PATH": "/usr/bin:/bin"})
    # The extra variables are added to the base ones and replace those of the same name (once, not twice).
    assert (code, output.split()) == (0, ["j1|/usr/bin:/bin|/h", "1"])


def test_the_shell_starts_in_the_directory_given_and_a_missing_one_is_an_os_error(method, tmp_path):
    assert run("pwd", cwd=str(tmp_path)) == (0, f"{tmp_path}\n")
    assert run("pwd") == (0, f"{os.getcwd()}\n")  # none given: this process's own
    before = {child.pid for child in psutil.Process().children()}
    with pytest.raises(FileNotFoundError):
        run("pwd", cwd=str(tmp_path / "gone"))
    assert {child.pid for child in psutil.Process().children()} <= before


def test_the_shell_leads_its_own_session_and_process_group(method):
    with tempfile.TemporaryFile() as output:
        child = launch.start_shell("sleep 30", output.fileno(), (("PATH", os.environ["PATH"]),))
        try:
            assert os.getsid(child.pid) == child.pid
            assert os.getpgid(child.pid) == child.pid
        finally:
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL


def test_no_descriptor_of_the_worker_leaks_into_the_job(method):
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)  # even one marked inheritable stays out
    try:
        code, output = run("ls /proc/$$/fd")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert code == 0
    assert set(output.split()) == {"0", "1", "2"}


def test_signals_are_not_ignored_nor_blocked_in_the_job(method):
    # Python ignores SIGPIPE; a shell pipeline such as `yes | head -1` relies on its default (terminate).
    previous = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        # exec: grep reads its own state, inherited from the shell (dash blocks signals while it forks)
        code, output = run("exec grep -E '^Sig(Ign|Blk)' /proc/self/status")
    finally:
        signal.signal(signal.SIGUSR2, previous)
    fields = dict(line.split(":") for line in output.splitlines())
    sigpipe_bit = 1 << (signal.SIGPIPE - 1)
    assert int(fields["SigIgn"], 16) & sigpipe_bit == 0
    assert int(fields["SigBlk"], 16) == 0
    assert code == 0


def test_the_shell_is_killed_by_the_kernel_when_its_worker_dies(method, tmp_path):
    # A stand-in worker starts the shell and is SIGKILLed: nothing else (no supervisor) could end the shell.
    pid_file = tmp_path / "shell.pid"
    stand_in = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from queuectl_worker import launch
        launch.method = lambda: {method!r}
        child = launch.start_shell("sleep 300", 1, (("PATH", os.environ["PATH"]),))
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(300)
    """)], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30, message="the shell to start")
        shell_pid = int(pid_file.read_text())
        assert alive(shell_pid)
        stand_in.kill()
        stand_in.wait(timeout=10)
        wait_for(lambda: not alive(shell_pid), 10, message="the kernel to kill the orphaned shell")
    finally:
        stand_in.kill()
        stand_in.wait()


def test_a_missing_program_is_an_os_error_not_a_zombie():
    if launch._spawn is None:
        pytest.skip("the C extension is not built")
    before = {child.pid for child in psutil.Process().children()}
    with pytest.raises(FileNotFoundError):
        launch._spawn.spawn([b"/nonexistent/sh"], [], 0, 1, 2)
    # The child that failed to exec was reaped by spawn itself: nothing new is left, not even a zombie.
    assert {child.pid for child in psutil.Process().children()} <= before
    with pytest.raises(TypeError):
        launch._spawn.spawn(["/bin/sh"], [], 0, 1, 2)
    with pytest.raises(ValueError):
        launch._spawn.spawn([], [], 0, 1, 2)
