"""Validate a patched workspace: syntax of every touched file, then the project's pytest suite.

pytest runs in a subprocess, in its own process group, under the configured sandbox and with
an environment built from an allowlist; the report plugin tells the agent how many tests
the run collected, so a suite cannot shrink or vanish unnoticed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hephaestus.agent.models import CycleError, Reason
from hephaestus.agent.patches import TextFile
from hephaestus.agent.pytest_report import REPORT_ENV, read_report
from hephaestus.agent.sandbox import Sandbox, validation_env

_OUTPUT_TAIL = 2_000
_REPORT_PLUGIN = ["-p", "hephaestus.agent.pytest_report"]
NO_SANDBOX = Sandbox("none", reason="no sandbox was configured for this run")


def check_syntax(root: Path, paths: Sequence[str]) -> None:
    """Parse every touched file that has a known syntax (.py, .json, .toml) as it is on disk now."""
    for path in paths:
        full = root / path
        if not full.is_file():
            continue
        text = TextFile.decode(full.read_bytes()).text
        try:
            if path.endswith(".py"):
                compile(text, path, "exec", dont_inherit=True)
            elif path.endswith(".json"):
                json.loads(text)
            elif path.endswith(".toml"):
                tomllib.loads(text)
        except SyntaxError as exc:
            where = f"{path}:{exc.lineno}" if exc.lineno else path
            raise CycleError(Reason.SYNTAX_ERROR, f"{where}: {exc.msg}") from None
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise CycleError(Reason.SYNTAX_ERROR, f"{path}: {exc}") from None


@dataclass(frozen=True)
class Isolation:
    """How one pytest run is isolated: the sandbox, what it may write, see and not see.

    ``secret`` names the API key's variable and ``passed`` the extra variables the tests
    may see (see :func:`~hephaestus.agent.sandbox.validation_env`).
    """

    sandbox: Sandbox = NO_SANDBOX
    writable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()
    secret: str = ""
    passed: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestRun:
    """The result of one pytest subprocess."""

    exit_code: int
    duration: float
    output_tail: str
    collected: int | None = None

    @property
    def result(self) -> str:
        """``passed``, ``failed`` or ``no_tests`` (pytest exit code 5)."""
        return {0: "passed", 5: "no_tests"}.get(self.exit_code, "failed")


def run_pytest(
    root: Path,
    args: Sequence[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    pid_file: Path | None = None,
    isolation: Isolation = Isolation(),
) -> TestRun:
    """Run ``python -m pytest`` in ``root`` in its own process group, under ``isolation``.

    On timeout the whole group is killed (pytest's own children, or the whole sandbox) and
    the cycle fails with ``timeout``. ``collected`` is how many tests the run collected, as
    the report plugin wrote it next to ``pid_file`` (``None`` when it wrote nothing).
    """
    report = pid_file.with_suffix(".json") if pid_file is not None else None
    extra = dict(env or {})
    writable = list(isolation.writable)
    if report is not None:
        report.write_text("")
        extra[REPORT_ENV] = str(report)
        writable.append(report)
        args = [*_REPORT_PLUGIN, *args]
    sandbox = isolation.sandbox
    extra.update(sandbox.private_env(os.environ))
    argv = sandbox.command(
        [sys.executable, "-m", "pytest", *args],
        workdir=root,
        writable=writable,
        hidden=isolation.hidden,
        readable=isolation.readable,
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=root,
        env=validation_env(os.environ, extra, secret=isolation.secret, passed=isolation.passed),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if pid_file is not None:
        pid_file.write_text(str(proc.pid))
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_process_group(proc)
        raise CycleError(
            Reason.TIMEOUT,
            f"pytest did not finish within {timeout:g}s; its process group was killed",
            error_type="pytest_timeout",
        ) from None
    except BaseException:
        _kill_process_group(proc)
        raise
    finally:
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
        collected = read_report(report) if report is not None else None
    return TestRun(
        exit_code=proc.returncode,
        duration=time.monotonic() - started,
        output_tail=(output or "")[-_OUTPUT_TAIL:],
        collected=collected,
    )


def _kill_process_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ``proc``'s whole process group and reap it."""
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # a grandchild left the group
        proc.communicate(timeout=5)
