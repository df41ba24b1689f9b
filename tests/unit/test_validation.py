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

from hephaestus.agent.models import CycleError, Reason
from hephaestus.agent.validation import TestRun as PytestRun
from hephaestus.agent.validation import check_syntax, run_pytest

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
    deadline = time.monotonic() + within
    while (alive := [p for p in pids if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


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
        grandchild = subprocess.Popen(["sleep", "300"])
        Path(os.environ["PIDS_FILE"]).write_text(f"{os.getpid()} {grandchild.pid}")
        time.sleep(30)
    """


def test_a_hanging_run_times_out_and_its_whole_process_group_is_killed(tmp_path):
    project, pids_file = tmp_path / "project", tmp_path / "pids"
    write(project, {"test_hang.py": HANGING_TEST})
    started = time.monotonic()

    with pytest.raises(CycleError) as info:
        run_pytest(project, PYTEST_ARGS, timeout=2, env={"PIDS_FILE": str(pids_file)})

    assert time.monotonic() - started < 5
    assert info.value.reason is Reason.TIMEOUT
    assert info.value.error_type == "pytest_timeout"
    assert "process group was killed" in info.value.detail
    assert pids_file.exists(), "the hanging test did not start its grandchild in time"
    pytest_pid, grandchild_pid = map(int, pids_file.read_text().split())
    assert wait_until_gone([pytest_pid, grandchild_pid]) == []


class Interrupted(BaseException):
    pass


def test_an_interrupted_run_kills_the_process_group_and_re_raises(tmp_path):
    project, pids_file = tmp_path / "project", tmp_path / "pids"
    write(project, {"test_hang.py": HANGING_TEST})

    def interrupt(_signum, _frame):
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, interrupt)
    # a signal handler runs in the main thread, interrupting the wait like SIGTERM would
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    try:
        with pytest.raises(Interrupted):
            run_pytest(project, PYTEST_ARGS, timeout=30, env={"PIDS_FILE": str(pids_file)})
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)

    assert pids_file.exists(), "the hanging test did not start its grandchild in time"
    assert wait_until_gone([int(p) for p in pids_file.read_text().split()]) == []
