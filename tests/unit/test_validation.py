"""Validation of a patched workspace: syntax of every touched file, then the project's pytest.

A syntax error names the file and the line and fails the cycle with ``syntax_error``. pytest
runs in a subprocess in its own process group; when it outlives its timeout, the whole group
— its own children included — is killed and the cycle fails with ``timeout``.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import require_binary
from factories import eventually

from hephaestus.agent.models import CycleError, Reason
from hephaestus.agent.pytest_report import read_report
from hephaestus.agent.sandbox import resolve_sandbox
from hephaestus.agent.validation import Isolation, check_syntax, run_pytest
from hephaestus.agent.validation import TestRun as PytestRun

PYTEST_ARGS = ["-q", "-p", "no:cacheprovider"]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until_gone(pids: list[int], within: float = 3.0) -> list[int]:
    """The processes of ``pids`` still running once all are gone or ``within`` has passed."""
    eventually(lambda: not any(running(p) for p in pids), within, interval=0.02)
    return [p for p in pids if running(p)]


# -- syntax -----------------------------------------------------------------------------------
def test_well_formed_python_json_and_toml_pass(tmp_path):
    write(
        tmp_path,
        {
            "pkg/mod.py": "def f(x):\n    return x == 1\n",
            "data.json": '{"a": [1, 2, {"b": null}]}\n',
            "pyproject.toml": '[project]\nname = "x"\nversion = "1"\n',
            "README.md": "this { is not [ checked\n",
        },
    )

    check_syntax(tmp_path, ["pkg/mod.py", "data.json", "pyproject.toml", "README.md"])


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("pkg/bad.py", "x = 1\ndef f(:\n    pass\n", "pkg/bad.py:2"),
        ("pkg/indent.py", "x = 1\n    y = 2\n", "pkg/indent.py:2"),
        ("pkg/open.py", "value = (\n", "pkg/open.py:1"),
        ("data.json", '{\n  "a": 1,\n}\n', "line 3"),
        ("conf.toml", "a = 1\nb = \n", "line 2"),
    ],
)
def test_a_syntax_error_fails_with_syntax_error_naming_file_and_line(tmp_path, name, text, where):
    write(tmp_path, {name: text})

    with pytest.raises(CycleError) as info:
        check_syntax(tmp_path, [name])

    assert info.value.reason is Reason.SYNTAX_ERROR
    assert info.value.detail.startswith(name)
    assert where in info.value.detail


def test_a_null_byte_in_python_names_the_file_without_a_bogus_line(tmp_path):
    (tmp_path / "nul.py").write_bytes(b"x = '\x00'\n")

    with pytest.raises(CycleError) as info:
        check_syntax(tmp_path, ["nul.py"])

    assert info.value.reason is Reason.SYNTAX_ERROR
    assert info.value.detail == "nul.py: source code string cannot contain null bytes"


def test_the_first_bad_file_stops_the_check(tmp_path):
    write(tmp_path, {"good.py": "x = 1\n", "bad.py": "x = = 1\n", "worse.json": "{"})

    with pytest.raises(CycleError, match=r"^bad\.py:1"):
        check_syntax(tmp_path, ["good.py", "bad.py", "worse.json"])


def test_deleted_files_and_directories_are_skipped(tmp_path):
    (tmp_path / "pkg.py").mkdir()

    check_syntax(tmp_path, ["gone.py", "gone.json", "pkg.py"])


def test_files_are_decoded_like_the_patcher_does(tmp_path):
    (tmp_path / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n")
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')

    check_syntax(tmp_path, ["latin.py", "bom.json"])


# -- pytest -----------------------------------------------------------------------------------
def test_passing_tests_exit_0_and_pass(tmp_path):
    write(tmp_path, {"test_ok.py": "def test_ok():\n    assert 1 + 1 == 2\n"})

    run = run_pytest(tmp_path, PYTEST_ARGS, timeout=60)

    assert (run.exit_code, run.result) == (0, "passed")
    assert "1 passed" in run.output_tail
    assert run.duration > 0


def test_a_failing_test_fails(tmp_path):
    write(tmp_path, {"test_bad.py": "def test_bad():\n    assert 1 == 2\n"})

    run = run_pytest(tmp_path, PYTEST_ARGS, timeout=60)

    assert (run.exit_code, run.result) == (1, "failed")
    assert "1 failed" in run.output_tail


def test_no_tests_is_exit_5_and_no_tests(tmp_path):
    write(tmp_path, {"mod.py": "x = 1\n"})

    run = run_pytest(tmp_path, PYTEST_ARGS, timeout=60)

    assert (run.exit_code, run.result) == (5, "no_tests")


@pytest.mark.parametrize(
    ("exit_code", "result"),
    [(0, "passed"), (5, "no_tests"), (1, "failed"), (2, "failed"), (-9, "failed")],
)
def test_result_names_the_exit_code(exit_code, result):
    assert PytestRun(exit_code=exit_code, duration=0.0, output_tail="").result == result


def test_output_tail_keeps_only_the_end_of_a_long_output(tmp_path):
    write(
        tmp_path,
        {
            "test_loud.py": """\
        def test_loud():
            print("noise " * 5000)
            assert False
        """
        },
    )

    run = run_pytest(tmp_path, [*PYTEST_ARGS, "-s"], timeout=60)

    assert len(run.output_tail) == 2000
    assert "1 failed" in run.output_tail.splitlines()[-1]


def test_env_is_passed_to_the_tests(tmp_path):
    write(
        tmp_path,
        {
            "test_env.py": """\
        import os

        def test_env():
            assert os.environ["HEPHAESTUS_PROBE"] == "forty-two"
            assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1"
        """
        },
    )

    run = run_pytest(tmp_path, PYTEST_ARGS, timeout=60, env={"HEPHAESTUS_PROBE": "forty-two"})

    assert run.result == "passed", run.output_tail


def test_the_callers_pytest_addopts_do_not_leak_into_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "--no-such-option")
    write(tmp_path, {"test_ok.py": "def test_ok():\n    pass\n"})

    run = run_pytest(tmp_path, PYTEST_ARGS, timeout=60)

    assert run.result == "passed", run.output_tail


HANGING_TEST = """\
    import os
    import subprocess
    import time
    from pathlib import Path

    def test_hangs():
        grandchild = subprocess.Popen(["sleep", Path("sleep_for").read_text()])
        Path("started").write_text(f"{os.getpid()} {grandchild.pid}")
        time.sleep(300)
    """


def hanging_project(tmp_path: Path) -> tuple[Path, str]:
    """A project whose test starts a grandchild and hangs; the grandchild's unique argv."""
    project = tmp_path / "project"
    token = f"{3000 + os.getpid() % 1000}.{time.time_ns() % 10**6:06d}"
    write(project, {"test_hang.py": HANGING_TEST, "sleep_for": token})
    return project, token


def host_processes_running(token: str) -> list[int]:
    """Live host processes whose command line is ``sleep <token>``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes() == f"sleep\0{token}\0".encode() and running(
                int(cmdline.parent.name)
            ):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def startup_baseline(project: Path, isolation: Isolation) -> float:
    """How long a trivial pytest run takes here and now (the same load as the test's)."""
    quick = project / "quick"
    write(quick, {"test_quick.py": "def test_quick():\n    pass\n"})
    return run_pytest(quick, PYTEST_ARGS, timeout=120, isolation=isolation).duration


@pytest.mark.parametrize("sandboxed", [False, True], ids=["host", "bwrap"])
def test_a_hanging_run_times_out_and_everything_it_started_is_killed(tmp_path, sandboxed):
    if sandboxed:
        require_binary("bwrap")
    isolation = Isolation(sandbox=resolve_sandbox("bwrap" if sandboxed else "none"))
    project, token = hanging_project(tmp_path)
    # long enough for the test to get going on this machine, under this load
    timeout = 2 + 5 * startup_baseline(tmp_path, isolation)

    with pytest.raises(CycleError) as info:
        run_pytest(project, PYTEST_ARGS, timeout=timeout, isolation=isolation)

    assert info.value.reason is Reason.TIMEOUT
    assert info.value.error_type == "pytest_timeout"
    assert "process group was killed" in info.value.detail
    assert (project / "started").exists(), "the hanging test never started"
    assert wait_until_none_running(token) == []  # the grandchild too: it did not finish
    if not sandboxed:  # on the host the pids are ours to check as well
        assert wait_until_gone([int(p) for p in (project / "started").read_text().split()]) == []


def wait_until_none_running(token: str, within: float = 10.0) -> list[int]:
    """The processes carrying ``token`` still running once none is or ``within`` has passed."""
    eventually(lambda: not host_processes_running(token), within, interval=0.02)
    return host_processes_running(token)


class Interrupted(BaseException):
    pass


def test_an_interrupted_run_kills_the_process_group_and_re_raises(tmp_path):
    project, token = hanging_project(tmp_path)

    def interrupt(_signum, _frame):
        raise Interrupted

    def interrupt_once_the_test_hangs() -> None:
        while not (project / "started").exists():  # an event, not a guess at how long
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    # a signal handler runs in the main thread, interrupting the wait like SIGTERM would
    watcher = threading.Thread(target=interrupt_once_the_test_hangs, daemon=True)
    watcher.start()
    try:
        with pytest.raises(Interrupted):
            run_pytest(project, PYTEST_ARGS, timeout=600)
    finally:
        signal.signal(signal.SIGUSR1, previous)

    assert wait_until_gone([int(p) for p in (project / "started").read_text().split()]) == []
    assert wait_until_none_running(token) == []


# -- what the run reports ---------------------------------------------------------------------
def test_the_report_plugin_counts_what_was_collected_after_deselection(tmp_path):
    write(
        tmp_path,
        {
            "test_many.py": "def test_a():\n    pass\n\ndef test_b():\n    pass\n",
            "conftest.py": """\
        def pytest_collection_modifyitems(items):
            del items[1:]
        """,
        },
    )
    pid_file = tmp_path.parent / f"{tmp_path.name}.pytest.pid"

    run = run_pytest(tmp_path, PYTEST_ARGS, timeout=60, pid_file=pid_file)

    assert (run.result, run.collected) == ("passed", 1)
    assert not pid_file.exists() and not pid_file.with_suffix(".json").exists()


def test_without_a_pid_file_nothing_is_reported(tmp_path):
    write(tmp_path, {"test_ok.py": "def test_ok():\n    pass\n"})

    assert run_pytest(tmp_path, PYTEST_ARGS, timeout=60).collected is None


@pytest.mark.parametrize(
    "text", ["", "not json", '{"collected": -1}', '{"collected": true}', '{"other": 1}']
)
def test_a_report_that_says_nothing_usable_is_none(tmp_path, text):
    report = tmp_path / "report.json"
    report.write_text(text)

    assert read_report(report) is None
    assert not report.exists()


def test_the_environment_of_the_tests_is_an_allowlist(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-nope")
    monkeypatch.setenv("PROBE_LLM_AUTH", "named-by-config")
    monkeypatch.setenv("UNRELATED_SETTING", "x")
    write(
        tmp_path,
        {
            "test_env.py": """\
        import os

        def test_env():
            assert "OPENAI_API_KEY" not in os.environ
            assert "PROBE_LLM_AUTH" not in os.environ
            assert "UNRELATED_SETTING" not in os.environ
            assert os.environ["PASSED_ON"] == "yes"
        """
        },
    )
    monkeypatch.setenv("PASSED_ON", "yes")
    isolation = Isolation(secret="PROBE_LLM_AUTH", passed=("PASSED_ON", "PROBE_LLM_AUTH"))

    run = run_pytest(tmp_path, PYTEST_ARGS, timeout=60, isolation=isolation)

    assert run.result == "passed", run.output_tail
