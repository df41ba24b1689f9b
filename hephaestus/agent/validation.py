"""Validate a patched workspace: syntax of every touched file, then the project's pytest suite."""

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

_OUTPUT_TAIL = 2_000


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
class TestRun:
    """The result of one pytest subprocess."""

    exit_code: int
    duration: float
    output_tail: str

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
) -> TestRun:
    """Run ``python -m pytest`` in ``root`` in its own process group.

    On timeout the whole group is killed (pytest's own children included) and the cycle
    fails with ``timeout``. Exit code 5 (no tests collected) counts as a pass.
    """
    run_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    run_env.pop("PYTEST_ADDOPTS", None)
    run_env.pop("COV_CORE_SOURCE", None)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=root,
        env=run_env,
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
        kill_process_group(proc)
        raise CycleError(
            Reason.TIMEOUT,
            f"pytest did not finish within {timeout:g}s; its process group was killed",
            error_type="pytest_timeout",
        ) from None
    except BaseException:
        kill_process_group(proc)
        raise
    finally:
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
    return TestRun(
        exit_code=proc.returncode,
        duration=time.monotonic() - started,
        output_tail=(output or "")[-_OUTPUT_TAIL:],
    )


def kill_process_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ``proc``'s whole process group and reap it."""
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # a grandchild left the group
        proc.communicate(timeout=5)
