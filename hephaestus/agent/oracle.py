"""The project's tests are the oracle: run them sandboxed, and refuse a suite that shrank.

A patched workspace passes only when pytest exits 0 *and* collected at least as many tests
as the base commit did. The base's count is collected once per base commit, in a pristine
worktree of it, under the same sandbox and arguments, unless the base is a commit this
oracle validated itself (its count is then already known); both counts go on the validate
span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hephaestus import telemetry
from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.models import CycleError, Reason
from hephaestus.agent.recovery import PYTEST_PID_SUFFIX
from hephaestus.agent.sandbox import Sandbox
from hephaestus.agent.validation import Isolation, TestRun, run_pytest
from hephaestus.agent.workspace import Workspace
from hephaestus.config import ValidationConfig
from hephaestus.resilience.timeouts import current_deadline

_BASELINE_SUFFIX = ".base"


@dataclass
class TestOracle:
    """Runs a workspace's tests and decides whether they vouch for the change."""

    config: ValidationConfig
    sandbox: Sandbox
    repo: GitRepo
    secret: str = ""
    instruments: telemetry.Instruments = field(default_factory=telemetry.Instruments.default)
    _baselines: dict[str, int] = field(default_factory=dict)
    _validated: int | None = None  # what the last successful check collected

    def isolation(self, writable: tuple[Path, ...] = ()) -> Isolation:
        """The target hidden, its ``.git`` readable, ``writable`` (and the worktree) writable."""
        return Isolation(
            sandbox=self.sandbox,
            writable=writable,
            hidden=(self.repo.root,),
            readable=(self.repo.git_dir(),),
            secret=self.secret,
            passed=tuple(self.config.pass_env),
        )

    def check(self, workspace: Workspace) -> TestRun:
        """Run the patched suite; fail with ``tests_failed`` unless it vouches for the change."""
        self._validated = None
        before = self.baseline(workspace)
        with self.instruments.tool_span("pytest") as tool:
            env = tool.env()
            span_file = (tool.span_file,) if tool.span_file is not None else ()
            try:
                run = self._run(workspace, [], env, span_file)
            except CycleError as exc:
                tool.result(exc.reason.value)
                raise
            tool.result(run.result, run.exit_code)
        telemetry.set_attributes(
            {
                "hephaestus.tests.collected_before": before,
                "hephaestus.tests.collected_after": -1 if run.collected is None else run.collected,
            }
        )
        verdict = _verdict(run, before)
        if verdict is not None:
            raise CycleError(Reason.TESTS_FAILED, verdict, error_type=f"tests_{run.result}")
        self._validated = run.collected
        return run

    def committed(self, commit: str) -> None:
        """``commit`` holds exactly the tree just validated: its count is the next baseline."""
        if self._validated is not None:
            self._baselines[commit] = self._validated
            self._validated = None

    def baseline(self, workspace: Workspace) -> int:
        """How many tests the base commit collects (once per base, in a worktree of it)."""
        if workspace.base not in self._baselines:
            base = Workspace.create(
                self.repo, workspace.root.parent, workspace.root.name + _BASELINE_SUFFIX
            )
            try:
                with self.instruments.tool_span("pytest --collect-only"):
                    run = self._run(base, ["--collect-only"], {}, ())
            finally:
                base.discard()
            self._baselines[workspace.base] = run.collected or 0
        return self._baselines[workspace.base]

    def _run(
        self,
        workspace: Workspace,
        args: list[str],
        env: dict[str, str],
        writable: tuple[Path, ...],
    ) -> TestRun:
        root = workspace.root
        return run_pytest(
            root,
            [*args, *self.config.pytest_args],
            timeout=current_deadline().cap(self.config.pytest_timeout),
            env=env,
            pid_file=root.parent / f"{root.name}{PYTEST_PID_SUFFIX}",
            isolation=self.isolation(writable),
        )


def _verdict(run: TestRun, before: int) -> str | None:
    """Why ``run`` does not vouch for the change, or ``None`` when it does."""
    if run.result == "failed":
        tail = run.output_tail.strip().splitlines()[-1:] or [""]
        return f"pytest exited with {run.exit_code}: {tail[0][:300]}"
    if run.result == "no_tests":
        return "pytest ran no tests (exit code 5); a change is only validated by tests that run"
    if run.collected is None:
        return "pytest did not report how many tests it collected; the run cannot vouch for it"
    if run.collected < before:
        return (
            f"the patched suite collects {run.collected} tests, the base collected {before}; "
            f"a change may not shrink the test suite"
        )
    return None
