"""Shutdown, crashes and broken storage, with real processes, real signals and real git.

``hephaestus serve`` gets a real SIGTERM while pytest validates a change; a driver process
running a cycle SIGKILLs itself at scan, apply, validate and commit (and in the middle of
the fast-forward into the target); the memory database is locked or read-only; the
workspace directory cannot be created. Each time the target repository must be exactly as
before (or hold the complete commit), the memory must keep every row, and the next start
must recover and run on.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from conftest import require_binary
from factories import (
    clean_env,
    eventually,
    git,
    make_agent,
    make_config,
    make_target_repo,
    repo_snapshot,
    run_cli,
    wait_until,
)
from factories import serve as serve_process

from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.memory import Memory
from hephaestus.agent.models import CycleResult, Reason
from hephaestus.agent.recovery import AgentLocked
from hephaestus.telemetry.spanfile import read_span_file

pytestmark = pytest.mark.slow

ROOT_SPAN = "invoke_workflow hephaestus.cycle"
FAST = {
    "HEPHAESTUS_LOGGING_FORMAT": "json",
    "HEPHAESTUS_RESILIENCE_FAILURE_BACKOFF": "0",
    "HEPHAESTUS_RESILIENCE_RETRY_WAIT_INITIAL": "0.01",
    "HEPHAESTUS_RESILIENCE_RETRY_WAIT_MAX": "0.02",
    "HEPHAESTUS_RESILIENCE_RETRY_WAIT_JITTER": "0",
}


# -- processes --------------------------------------------------------------------------------
def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without Hephaestus or OTel settings, plus fast waits and ``extra``."""
    return clean_env({**FAST, **(extra or {})})


def hephaestus(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hephaestus args`` to the end, with fast waits."""
    return run_cli(*args, env={**FAST, **(env or {})}, timeout=timeout)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``hephaestus serve`` on a repo; whatever is still running is stopped at the end."""
    logs = (tmp_path / f"serve-{n}.log" for n in range(100))
    with ExitStack() as running:

        def start(repo: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
            log = next(logs)
            proc = running.enter_context(
                serve_process(repo, 0, log, env={**FAST, **env}, interval=0)
            )
            proc.log_path = log  # type: ignore[attr-defined]
            return proc

        yield start


def output(proc: subprocess.Popen[str]) -> str:
    return proc.log_path.read_text()  # type: ignore[attr-defined]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def group_alive(pgid: int) -> bool:
    """Whether any live process is in process group ``pgid``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def patched_suite_runs(workspaces: Path) -> list[Path]:
    """Pid files of running pytest processes validating a patch (not collecting the base)."""
    if not workspaces.is_dir():
        return []
    return [p for p in workspaces.glob("*.pytest.pid") if not p.name.endswith(".base.pytest.pid")]


def wait_for_pytest(
    repo: Path, proc: subprocess.Popen[str] | None = None, timeout: float = 60
) -> int:
    """Wait until a cycle's validation runs pytest; return pytest's pid (= its group)."""
    workspaces = repo / ".hephaestus" / "workspaces"

    def pytest_pid() -> int | None:
        for pid_file in patched_suite_runs(workspaces):
            text = pid_file.read_text().strip()
            if text:
                return int(text)
        return None

    procs = [] if proc is None else [proc]
    logs = [] if proc is None else [proc.log_path]  # type: ignore[attr-defined]
    pid: int = wait_until(pytest_pid, timeout, "pytest to validate a patch", procs, logs)
    return pid


# -- repositories and what the agent left in them ---------------------------------------------
def project(path: Path, test_body: str = "pass") -> Path:
    """A small repo with two improvements for the offline brain and a test suite to run."""
    return make_target_repo(
        path,
        {
            "pkg/__init__.py": "VALUE = 1\n",
            "pkg/util.py": '"""Helpers."""\n\n\ndef double(x):\n    return 2 * x\n',
            "tests/test_pkg.py": (
                '"""Tests of pkg."""\nimport os\nimport time\n\nfrom pkg import VALUE\n\n\n'
                f'def test_value():\n    """VALUE is one."""\n    {test_body}\n'
                "    assert VALUE == 1\n"
            ),
        },
    )


def memory_rows(repo: Path) -> list[dict[str, Any]]:
    """Every cycle recorded in the repo's memory database, oldest first."""
    conn = sqlite3.connect(repo / ".hephaestus" / "memory.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM cycles ORDER BY id")]
    finally:
        conn.close()


def memory_dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def root_span(repo: Path, correlation_id: str) -> dict[str, Any]:
    found = [
        s
        for s in read_span_file(repo / ".hephaestus" / "traces.jsonl")
        if s["name"] == ROOT_SPAN
        and s["attributes"].get("hephaestus.correlation_id") == correlation_id
    ]
    assert len(found) == 1, f"{len(found)} root spans for {correlation_id}"
    return found[0]


def spans_of(repo: Path, trace_id: str) -> list[dict[str, Any]]:
    return [
        s
        for s in read_span_file(repo / ".hephaestus" / "traces.jsonl")
        if s["trace_id"] == trace_id
    ]


def worktrees(repo: Path) -> list[str]:
    return [
        line.split()[1]
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def assert_clean(repo: Path, before: dict[str, Any]) -> None:
    assert repo_snapshot(repo) == before
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert worktrees(repo) == [str(repo)]
    assert list((repo / ".hephaestus" / "workspaces").iterdir()) == []


# -- graceful shutdown ------------------------------------------------------------------------
HANGS = 60  # seconds a "slow" test sleeps: what waiting it out would have cost


def test_sigterm_during_a_slow_validation_aborts_within_the_grace_period(tmp_path, serve):
    repo = project(tmp_path / "target", test_body=f"time.sleep({HANGS})")
    before = repo_snapshot(repo)
    proc = serve(repo, {"HEPHAESTUS_RESILIENCE_SHUTDOWN_GRACE": "1"})
    pytest_pid = wait_for_pytest(repo, proc)
    assert alive(pytest_pid)

    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    took = time.monotonic() - signalled

    assert code == 0, output(proc)
    assert took >= 0.9, output(proc)  # the stage had its grace period...
    assert took < HANGS / 2, output(proc)  # ...and was then cut, not waited out
    assert not group_alive(pytest_pid)  # pytest and anything it started were killed
    (row,) = memory_rows(repo)
    assert (row["status"], row["outcome"], row["reason"]) == ("finished", "aborted", "shutdown")
    assert_clean(repo, before)
    root = root_span(repo, row["correlation_id"])  # spans were flushed before exit
    assert root["attributes"]["hephaestus.outcome"] == "aborted"
    assert root["trace_id"] == row["trace_id"]
    names = {s["name"] for s in spans_of(repo, row["trace_id"])}
    assert {"hephaestus.validate", "execute_tool pytest", "hephaestus.record"} <= names
    assert "hephaestus.commit" not in names


def test_sigterm_between_stages_lets_the_stage_finish_and_stops_before_the_next(tmp_path, serve):
    repo = project(tmp_path / "target", test_body="time.sleep(3)")
    before = repo_snapshot(repo)
    proc = serve(repo, {"HEPHAESTUS_RESILIENCE_SHUTDOWN_GRACE": "60"})
    wait_for_pytest(repo, proc)

    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    took = time.monotonic() - signalled

    assert code == 0, output(proc)
    assert took >= 2.0  # the running validation was not cut short...
    (row,) = memory_rows(repo)
    assert (row["outcome"], row["reason"]) == ("aborted", "shutdown")
    assert "before the commit stage" in row["detail"]  # ...and the next stage never started
    assert '"validate"' in row["durations"] and '"commit"' not in row["durations"]
    (tool,) = [s for s in spans_of(repo, row["trace_id"]) if s["name"] == "execute_tool pytest"]
    assert tool["attributes"]["hephaestus.tool.result"] == "passed"
    assert_clean(repo, before)  # a validated change is not committed during shutdown


def test_a_second_sigterm_aborts_the_running_stage_at_once(tmp_path, serve):
    repo = project(tmp_path / "target", test_body=f"time.sleep({HANGS})")
    before = repo_snapshot(repo)
    proc = serve(repo, {"HEPHAESTUS_RESILIENCE_SHUTDOWN_GRACE": "60"})
    pytest_pid = wait_for_pytest(repo, proc)

    proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert proc.poll() is None, output(proc)  # waiting for the stage (grace 60 s)
    assert alive(pytest_pid)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)

    assert code == 0, output(proc)
    assert time.monotonic() - signalled < HANGS / 2  # not the 60 s grace, nor the test's sleep
    assert not group_alive(pytest_pid)
    (row,) = memory_rows(repo)
    assert (row["outcome"], row["reason"]) == ("aborted", "shutdown")
    assert "CycleAborted" in row["detail"]
    assert_clean(repo, before)


# -- kill -9 at any point ---------------------------------------------------------------------
DRIVER = '''\
"""Run one cycle and SIGKILL this process at the point named in argv ("recover": only start)."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from hephaestus.agent import stages
from hephaestus.agent.build import build_runner
from hephaestus.agent.gitrepo import GitRepo
from hephaestus.config import load_config

repo, point = Path(sys.argv[1]), sys.argv[2]


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def die_once_pytest_runs(workspaces):
    while True:
        for pid_file in workspaces.glob("*.pytest.pid"):
            if ".base." not in pid_file.name and pid_file.read_text().strip():  # not collection
                time.sleep(0.3)  # pytest is inside the test by now
                die()
        time.sleep(0.01)


def on_stage(result, stage):
    if point == "commit" and stage.value == "commit":
        die()  # validated, committed nowhere yet
    if point.startswith("validate") and stage.value == "validate":
        threading.Thread(target=die_once_pytest_runs, args=(runner.workspaces_dir,),
                         daemon=True).start()


def wrap_then_die(module, name):
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        real(*args, **kwargs)
        die()

    setattr(module, name, wrapper)


if point == "scan":
    wrap_then_die(stages, "scan")  # the worktree exists, the manifest was just built
elif point == "apply":
    wrap_then_die(stages, "apply_plan")  # the worktree is patched
elif point == "after-fast-forward":
    wrap_then_die(GitRepo, "fast_forward")  # the target moved; the journal is still there
elif point == "fast-forward":
    def torn_fast_forward(self, commit):
        """Die after git wrote one of the commit's files into the target, lock held."""
        changed = subprocess.run(["git", "diff", "--name-only", "HEAD", commit], cwd=self.root,
                                 capture_output=True, text=True, check=True).stdout.split()
        content = subprocess.run(["git", "show", f"{commit}:{changed[0]}"], cwd=self.root,
                                 capture_output=True, check=True).stdout
        (self.root / changed[0]).write_bytes(content)
        (self.root / ".git" / "index.lock").write_bytes(b"")
        die()

    GitRepo.fast_forward = torn_fast_forward
elif point == "ref-update":
    def dies_moving_the_branch(self, commit):
        """Die as git would between writing the work tree and moving HEAD's branch."""
        changed = subprocess.run(["git", "diff", "--name-only", "HEAD", commit], cwd=self.root,
                                 capture_output=True, text=True, check=True).stdout.split()
        for path in changed:
            content = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=self.root,
                                     capture_output=True, check=True).stdout
            (self.root / path).write_bytes(content)
        for lock in ("index.lock", "HEAD.lock", "refs/heads/main.lock"):
            (self.root / ".git" / lock).write_bytes(b"")
        die()

    GitRepo.fast_forward = dies_moving_the_branch

runner = build_runner(load_config(), repo, on_stage=on_stage)
if point != "recover":
    print(runner.run_cycle())
    sys.exit(3)  # never reached: the process died at the point
runner.close()
'''

KILL_POINTS = [
    "scan",
    "apply",
    "validate",
    "validate-unsandboxed",
    "commit",
    "fast-forward",
    "ref-update",
    "after-fast-forward",
]
JOURNALED = ("fast-forward", "ref-update", "after-fast-forward")
GIT_LOCKS = ("index.lock", "HEAD.lock", "refs/heads/main.lock")


def drive(
    tmp_path: Path, repo: Path, point: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    return subprocess.run(
        [sys.executable, str(driver), str(repo), point],
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("point", KILL_POINTS)
def test_after_kill_9_the_next_start_recovers_and_runs_on(tmp_path, point):
    repo = project(
        tmp_path / "target", test_body=("if os.environ.get('SLOW_TESTS'):\n        time.sleep(60)")
    )
    before = repo_snapshot(repo)
    journal = repo / ".hephaestus" / "commit-journal.json"
    workspaces = repo / ".hephaestus" / "workspaces"

    env = {"SLOW_TESTS": "1", "HEPHAESTUS_VALIDATION_PASS_ENV": "SLOW_TESTS"}
    if point == "validate":
        require_binary("bwrap")
    if point == "validate-unsandboxed":
        env["HEPHAESTUS_VALIDATION_SANDBOX"] = "none"

    killed = drive(tmp_path, repo, point, env)

    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    (row,) = memory_rows(repo)
    assert (row["status"], row["outcome"]) == ("running", None)
    assert len(worktrees(repo)) == 2 and len(list(workspaces.iterdir())) >= 1  # stale
    assert journal.exists() == (point in JOURNALED)
    orphan = None
    if point.startswith("validate"):
        (pid_file,) = patched_suite_runs(workspaces)
        orphan = int(pid_file.read_text())
    if point == "validate":  # the sandbox dies with the agent (bwrap --die-with-parent)
        assert eventually(lambda: not group_alive(orphan), 60), "the sandbox outlived the agent"
    if point == "validate-unsandboxed":
        assert alive(orphan)  # pytest outlived the agent (it runs in its own session)
    if point in ("fast-forward", "ref-update"):
        assert repo_snapshot(repo) != before  # the target really was half-changed

    recovered = drive(tmp_path, repo, "recover")  # the next start, before any cycle

    assert recovered.returncode == 0, recovered.stderr
    if point == "after-fast-forward":  # the commit had landed: it is kept, complete
        assert git(repo, "rev-parse", "HEAD~1").strip() == before["head"]
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
        changed = set(git(repo, "show", "--name-only", "--format=", "HEAD").split())
        after = repo_snapshot(repo)["files"]
        assert {p for p in after if after[p] != before["files"].get(p)} == changed
        assert worktrees(repo) == [str(repo)] and list(workspaces.iterdir()) == []
    else:
        assert_clean(repo, before)
    assert not journal.exists()
    assert [lock for lock in GIT_LOCKS if (repo / ".git" / lock).exists()] == []
    (row,) = memory_rows(repo)
    assert (row["status"], row["outcome"], row["reason"]) == ("finished", "aborted", "interrupted")
    if orphan is not None:
        assert not group_alive(orphan)

    proc = hephaestus("run", "--project", repo, "--cycles", "1")

    assert proc.returncode == 0, proc.stderr
    assert "1/1 cycles succeeded" in proc.stdout, proc.stdout
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert [r["outcome"] for r in memory_rows(repo)] == ["aborted", "succeeded"]


# -- one agent per repository -----------------------------------------------------------------
def test_a_second_agent_on_the_same_repository_is_refused_naming_the_holder(tmp_path):
    repo = project(tmp_path / "target")
    first = make_agent(make_config(), repo)
    before = repo_snapshot(repo)
    try:
        with pytest.raises(AgentLocked) as info:
            make_agent(make_config(), repo)
        proc = hephaestus("run", "--project", repo, "--cycles", "1")
    finally:
        first.close()

    message = f"another hephaestus process (pid {os.getpid()}) is running cycles on {repo}"
    assert message in str(info.value)
    assert proc.returncode == 1
    assert f"hephaestus: error: {message}" in proc.stderr
    assert repo_snapshot(repo) == before
    make_agent(make_config(), repo).close()  # closing the first runner released the lock


# -- broken storage: a clear error, nothing lost ----------------------------------------------
@pytest.fixture
def remembered(tmp_path: Path) -> tuple[Path, Path]:
    """A repo whose memory already holds one finished cycle."""
    repo = project(tmp_path / "target")
    GitRepo(repo).ignore_agent_dir()
    db = repo / ".hephaestus" / "memory.db"
    memory = Memory(db)
    result = CycleResult(
        correlation_id="an-earlier-cycle",
        cycle_number=1,
        provider="offline",
        started_at=time.time(),
    )
    memory.start_cycle(result)
    result.end(Reason.COMMITTED, "committed 0123456")
    result.finished_at = time.time()
    memory.finish_cycle(result)
    memory.close()
    return repo, db


def assert_nothing_lost(repo: Path, before: dict[str, Any], db: Path, data: bytes) -> None:
    assert repo_snapshot(repo) == before
    assert db.read_bytes() == data
    assert [r["correlation_id"] for r in memory_rows(repo)] == ["an-earlier-cycle"]


def test_a_locked_memory_database_is_a_clear_error_and_nothing_is_lost(remembered):
    repo, db = remembered
    before, data = repo_snapshot(repo), db.read_bytes()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = hephaestus("run", "--project", repo, "--cycles", "1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert proc.returncode == 1, proc.stdout
    assert f"cannot open memory database {db}: database is locked" in proc.stderr
    assert "another process holds a lock on it; stop it or wait, then retry" in proc.stderr
    assert_nothing_lost(repo, before, db, data)


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    """Make a file read-only: chmod, or (as root, who ignores modes) ``chattr +i``."""
    undo: list[Callable[[], None]] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o444)
            undo.append(lambda: path.chmod(0o644))
            return
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip("as root a chmod does not make a file read-only, and chattr +i failed")
        undo.append(lambda: subprocess.run(["chattr", "-i", str(path)], check=True))

    yield make
    for step in undo:
        step()


def test_a_read_only_memory_database_is_a_clear_error_and_nothing_is_lost(remembered, read_only):
    repo, db = remembered
    before, data = repo_snapshot(repo), db.read_bytes()
    read_only(db)

    proc = hephaestus("run", "--project", repo, "--cycles", "1")

    assert proc.returncode == 1, proc.stdout
    assert f"cannot open memory database {db}" in proc.stderr
    assert "it is not writable; fix its permissions or set agent.memory_path" in proc.stderr
    assert_nothing_lost(repo, before, db, data)


def test_an_unwritable_workspace_dir_is_a_clear_error_and_nothing_is_lost(remembered, tmp_path):
    repo, db = remembered
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a directory\n")
    before, dump = repo_snapshot(repo), memory_dump(db)

    proc = hephaestus(
        "run",
        "--project",
        repo,
        "--cycles",
        "1",
        env={"HEPHAESTUS_AGENT_WORKSPACE_DIR": str(blocker / "workspaces")},
    )

    assert proc.returncode == 1, proc.stdout
    assert (
        f"hephaestus: error: workspace directory {blocker / 'workspaces'} is not writable"
        in proc.stderr
    )
    assert "set agent.workspace_dir to a writable directory" in proc.stderr
    assert repo_snapshot(repo) == before
    assert memory_dump(db) == dump  # no cycle was started, none recorded
    assert blocker.read_text() == "not a directory\n"


# -- the chaos demo ---------------------------------------------------------------------------
def test_the_chaos_demo_completes_and_leaves_the_repository_clean(tmp_path):
    workdir = tmp_path / "demo"
    proc = hephaestus(
        "demo",
        "--cycles",
        "6",
        "--workdir",
        workdir,
        env={
            "HEPHAESTUS_CHAOS_LLM_ERROR_RATE": "0.3",
            "HEPHAESTUS_CHAOS_SEED": "7",
            "HEPHAESTUS_RESILIENCE_FAILURE_BACKOFF": "0.15",
            "HEPHAESTUS_RESILIENCE_FAILURE_BACKOFF_MAX": "0.3",
            "HEPHAESTUS_RESILIENCE_BREAKER_RESET_TIMEOUT": "0.1",
        },
    )

    assert proc.returncode == 0, proc.stderr
    assert git(workdir, "status", "--porcelain", "--untracked-files=all") == ""
    (imported,) = git(workdir, "rev-list", "--max-parents=0", "HEAD").split()
    commits = git(workdir, "rev-list", f"{imported}..HEAD").split()
    for commit in commits:
        touched = git(workdir, "show", "--name-only", "--format=", commit).split()
        assert touched and all(path.endswith(".py") for path in touched), (commit, touched)

    rows = memory_rows(workdir)
    assert len(rows) == 6
    succeeded = [r for r in rows if r["outcome"] == "succeeded"]
    assert len(succeeded) == len(commits) >= 1
    failed = [r for r in rows if r["reason"] == "llm_error"]
    assert failed, "a 30 % error rate should fail some cycle"
    assert all(r["llm_calls"] < 4 for r in failed)  # a role never got its answer
    assert all(r["llm_calls"] == 4 for r in succeeded)
    spans = list(read_span_file(workdir / ".hephaestus" / "traces.jsonl"))
    retried = {s["trace_id"] for s in spans for e in s["events"] if e["name"] == "retry"}
    assert retried, "no retry event in the traces"
    assert {r["trace_id"] for r in failed} <= retried  # every failed cycle retried first
