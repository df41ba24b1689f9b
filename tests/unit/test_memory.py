"""The agent's memory: one SQLite row per cycle, in WAL mode, never silently reset.

A cycle's row is written ``running`` when it starts and completed when it ends; rows left
``running`` by a dead process become ``aborted``/``interrupted`` on the next start. A database
that cannot be used — corrupt, too new, read-only or locked — is a clear
:class:`MemoryStoreError`, and its bytes are left exactly as they were.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from hephaestus.agent.memory import SCHEMA_VERSION, Memory, MemoryStoreError
from hephaestus.agent.models import CycleResult, Objective, Outcome, Reason


def cycle(
    number: int = 1,
    *,
    started_at: float | None = None,
    objective: str | None = None,
    reason: Reason = Reason.COMMITTED,
    **fields: object,
) -> CycleResult:
    """A finished cycle result; ``started_at`` defaults to ``1000 + number``."""
    result = CycleResult(
        correlation_id=str(uuid.uuid4()),
        cycle_number=number,
        trace_id=uuid.uuid4().hex,
        provider="offline",
        started_at=1000.0 + number if started_at is None else started_at,
        **fields,
    )
    result.objective = Objective(objective) if objective else None
    result.end(reason)
    result.finished_at = result.started_at + 1
    return result


def record(memory: Memory, result: CycleResult) -> CycleResult:
    memory.start_cycle(result)
    memory.finish_cycle(result)
    return result


def set_pid(path: Path, correlation_id: str, pid: int) -> None:
    """Pretend the row was written by process ``pid``."""
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE cycles SET pid = ? WHERE correlation_id = ?", (pid, correlation_id))
    conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "nested" / "memory.db"


@pytest.fixture
def memory(db_path: Path):
    store = Memory(db_path)
    yield store
    store.close()


# -- the database file ------------------------------------------------------------------------
def test_creates_the_database_and_its_parent_dirs_in_wal_mode(memory, db_path):
    assert db_path.is_file()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_reopening_keeps_every_recorded_cycle(db_path):
    first = Memory(db_path)
    result = record(first, cycle(objective="keep me"))
    first.close()

    second = Memory(db_path)
    row = second.find(result.correlation_id)
    second.close()

    assert row is not None
    assert row["objective"] == "keep me"


# -- recording cycles -------------------------------------------------------------------------
def test_start_cycle_writes_a_running_row_with_this_pid(memory):
    result = cycle(7)

    memory.start_cycle(result)

    row = memory.find(result.correlation_id)
    assert row["status"] == "running"
    assert row["pid"] == os.getpid()
    assert row["cycle_number"] == 7
    assert row["outcome"] is None


def test_finish_cycle_round_trips_every_field(memory):
    result = CycleResult(
        correlation_id="6f1c5a0e-0000-4000-8000-000000000001",
        cycle_number=3,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        objective=Objective(
            "Add a docstring to inventory.add",
            kind="missing_docstring",
            file_path="inventory/core.py",
        ),
        commit_sha="4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        files=("inventory/core.py", "inventory/new.py"),
        strategy="SYNTAX_AND_PYTEST",
        provider="openai",
        model="openai/gpt-4o-mini",
        llm_calls=4,
        input_tokens=1234,
        output_tokens=567,
        durations={"scan": 0.01, "plan": 1.5, "validate": 2.25},
        started_at=1_700_000_000.5,
        finished_at=1_700_000_004.75,
    )
    result.end(Reason.COMMITTED, "committed 2 files")

    memory.start_cycle(result)
    memory.finish_cycle(result)

    row = memory.find(result.correlation_id)
    assert row == {
        **row,  # the autoincrement id
        "correlation_id": "6f1c5a0e-0000-4000-8000-000000000001",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "cycle_number": 3,
        "status": "finished",
        "objective": "Add a docstring to inventory.add",
        "objective_kind": "missing_docstring",
        "objective_file": "inventory/core.py",
        "outcome": "succeeded",
        "reason": "committed",
        "detail": "committed 2 files",
        "strategy": "SYNTAX_AND_PYTEST",
        "commit_sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "files": ["inventory/core.py", "inventory/new.py"],
        "provider": "openai",
        "model": "openai/gpt-4o-mini",
        "llm_calls": 4,
        "input_tokens": 1234,
        "output_tokens": 567,
        "durations": {"scan": 0.01, "plan": 1.5, "validate": 2.25},
        "started_at": 1_700_000_000.5,
        "finished_at": 1_700_000_004.75,
        "pid": os.getpid(),
    }
    assert set(row) - {"id"} == {
        "correlation_id",
        "trace_id",
        "cycle_number",
        "status",
        "objective",
        "objective_kind",
        "objective_file",
        "outcome",
        "reason",
        "detail",
        "strategy",
        "commit_sha",
        "files",
        "provider",
        "model",
        "llm_calls",
        "input_tokens",
        "output_tokens",
        "durations",
        "started_at",
        "finished_at",
        "pid",
    }


def test_a_cycle_without_objective_stores_nulls_and_empty_collections(memory):
    result = record(memory, cycle(reason=Reason.NO_OBJECTIVE))

    row = memory.find(result.correlation_id)

    assert (row["objective"], row["objective_kind"], row["objective_file"]) == (None, None, None)
    assert (row["outcome"], row["reason"]) == ("rejected", "no_objective")
    assert (row["files"], row["durations"], row["commit_sha"]) == ([], {}, None)


def test_a_long_detail_is_truncated(memory):
    result = cycle(reason=Reason.TESTS_FAILED)
    result.detail = "x" * 5000

    record(memory, result)

    assert len(memory.find(result.correlation_id)["detail"]) == 2000


# -- reading cycles back ----------------------------------------------------------------------
def test_recording_a_correlation_id_twice_is_refused_without_blaming_corruption(memory):
    first = record(memory, cycle(1, objective="the original"))
    again = cycle(2, objective="a second cycle with the same id")
    again.correlation_id = first.correlation_id

    with pytest.raises(MemoryStoreError) as info:
        memory.start_cycle(again)

    assert "already holds a cycle with this correlation id" in str(info.value)
    assert "corrupt" not in str(info.value)
    assert memory.find(first.correlation_id)["objective"] == "the original"
    record(memory, cycle(3))  # the failed write was rolled back: the store still works
    assert len(memory.recent()) == 2


def test_recent_returns_newest_first_up_to_the_limit(memory):
    results = [record(memory, cycle(n)) for n in (1, 2, 3, 4)]

    newest = memory.recent(limit=3)

    assert [r["correlation_id"] for r in newest] == [
        r.correlation_id for r in reversed(results[1:])
    ]


@pytest.mark.parametrize("limit", [0, -1])
def test_recent_with_no_room_returns_nothing(memory, limit):
    record(memory, cycle())

    assert memory.recent(limit) == []


def test_find_by_correlation_id_or_by_trace_id(memory):
    other = record(memory, cycle(1))
    wanted = record(memory, cycle(2))

    by_correlation = memory.find(wanted.correlation_id)
    by_trace = memory.find(wanted.trace_id)

    assert by_correlation == by_trace
    assert by_trace["correlation_id"] == wanted.correlation_id
    assert memory.find(other.trace_id)["correlation_id"] == other.correlation_id
    assert memory.find("no-such-id") is None


def test_next_cycle_number_starts_at_one_and_follows_the_highest(memory):
    assert memory.next_cycle_number() == 1

    record(memory, cycle(1))
    assert memory.next_cycle_number() == 2

    record(memory, cycle(41))
    assert memory.next_cycle_number() == 42


def test_failure_counts_counts_only_failures_within_the_window(memory):
    for n, (objective, reason) in enumerate(
        [
            ("old failure", Reason.TESTS_FAILED),  # outside the window of 5
            ("flaky", Reason.TESTS_FAILED),
            ("flaky", Reason.SYNTAX_ERROR),
            ("flaky", Reason.COMMITTED),
            ("reviewed away", Reason.REVIEW_REJECTED),
            ("interrupted", Reason.INTERRUPTED),
        ],
        start=1,
    ):
        record(memory, cycle(n, objective=objective, reason=reason))
    record(memory, cycle(7, reason=Reason.LLM_ERROR))  # failed without an objective

    assert memory.failure_counts(window=6) == {"flaky": 2}
    assert memory.failure_counts(window=7) == {"flaky": 2, "old failure": 1}
    assert memory.failure_counts(window=0) == {}


# -- recovering after kill -9 -----------------------------------------------------------------
def finished_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_mark_interrupted_aborts_rows_of_dead_processes_only(memory, db_path):
    dead, live, own = cycle(1), cycle(2), cycle(3)
    for result in (dead, live, own):
        memory.start_cycle(result)
    done = record(memory, cycle(4))
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        set_pid(db_path, dead.correlation_id, finished_pid())
        set_pid(db_path, live.correlation_id, sleeper.pid)

        stale = memory.mark_interrupted()

        rows = {
            cid: memory.find(cid)
            for cid in (
                dead.correlation_id,
                live.correlation_id,
                own.correlation_id,
                done.correlation_id,
            )
        }
    finally:
        sleeper.kill()
        sleeper.wait()

    # a row of this very pid is stale too: this process has only just started
    assert sorted(stale) == sorted([dead.correlation_id, own.correlation_id])
    for cid in stale:
        row = rows[cid]
        assert (row["status"], row["outcome"], row["reason"]) == (
            "finished",
            Outcome.ABORTED.value,
            Reason.INTERRUPTED.value,
        )
        assert "died" in row["detail"]
        assert row["finished_at"] is not None
    assert rows[live.correlation_id]["status"] == "running"
    assert rows[live.correlation_id]["outcome"] is None
    assert rows[done.correlation_id]["reason"] == "committed"


def test_mark_interrupted_with_nothing_running_changes_nothing(memory):
    record(memory, cycle())

    assert memory.mark_interrupted() == []


# -- databases that cannot be used ------------------------------------------------------------
def random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(1234).randbytes(8192))


def damaged_page(path: Path) -> None:
    """A real memory database with one page in the middle overwritten."""
    store = Memory(path)
    for n in range(300):
        record(store, cycle(n, objective=f"objective number {n} " * 5))
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096 * (len(data) // 4096 // 2)
    data[page + 100 : page + 400] = random.Random(99).randbytes(300)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("corrupt", [random_bytes, damaged_page])
def test_a_corrupt_database_is_reported_and_never_touched(db_path, corrupt):
    db_path.parent.mkdir(parents=True)
    corrupt(db_path)
    before = db_path.read_bytes()

    with pytest.raises(MemoryStoreError) as info:
        Memory(db_path)

    message = str(info.value)
    assert message.startswith(f"cannot open memory database {db_path}: ")
    assert "looks corrupt" in message
    assert "never reset" in message
    assert db_path.read_bytes() == before
    wal = db_path.with_name("memory.db-wal")  # SQLite may open one for a WAL-mode file
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_database_from_a_newer_hephaestus_is_refused_naming_both_versions(db_path):
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = db_path.read_bytes()

    with pytest.raises(MemoryStoreError) as info:
        Memory(db_path)

    assert f"schema v{SCHEMA_VERSION + 1}" in str(info.value)
    assert f"(v{SCHEMA_VERSION})" in str(info.value)
    assert db_path.read_bytes() == before


def test_a_parent_path_that_is_a_file_cannot_be_created(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")

    with pytest.raises(MemoryStoreError, match=r"cannot create memory database .*memory_path"):
        Memory(blocker / "memory.db")


@pytest.fixture
def read_only_db(db_path):
    Memory(db_path).close()
    for name in os.listdir(db_path.parent):  # the -wal/-shm files, if any were left
        (db_path.parent / name).chmod(0o444)
    db_path.parent.chmod(0o555)
    try:
        with db_path.open("ab"):
            pass
    except PermissionError:
        pass
    else:
        db_path.parent.chmod(0o755)
        pytest.skip("running as root: chmod does not stop root from writing")
    yield db_path
    db_path.parent.chmod(0o755)
    db_path.chmod(0o644)


def test_a_read_only_database_is_a_clear_error(read_only_db):
    before = read_only_db.read_bytes()

    with pytest.raises(MemoryStoreError) as info:
        Memory(read_only_db, busy_timeout=0.1)

    assert "not writable" in str(info.value)
    assert "agent.memory_path" in str(info.value)
    assert read_only_db.read_bytes() == before
    assert stat.S_IMODE(read_only_db.stat().st_mode) == 0o444


def test_a_locked_database_says_another_process_holds_a_lock(db_path):
    store = Memory(db_path, busy_timeout=0.1)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(MemoryStoreError, match="another process holds a lock"):
            Memory(db_path, busy_timeout=0.1)
        with pytest.raises(MemoryStoreError, match="another process holds a lock"):
            store.check_writable()
        with pytest.raises(MemoryStoreError, match=r"cannot write to .*another process holds"):
            store.start_cycle(cycle())
        assert store.recent() == []  # reading still works in WAL mode
    finally:
        other.execute("ROLLBACK")
        other.close()

    store.check_writable()  # the lock is gone: writable again
    record(store, cycle())
    assert len(store.recent()) == 1
    store.close()


def test_check_writable_passes_on_a_free_database(memory):
    memory.check_writable()


def test_concurrent_writes_from_threads_are_all_recorded(memory):
    per_thread = 15
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for n in range(per_thread):
                record(memory, cycle(index * 100 + n))
                memory.recent(5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    rows = memory.recent(limit=1000)
    assert len(rows) == 4 * per_thread
    assert {r["status"] for r in rows} == {"finished"}
    assert len({r["correlation_id"] for r in rows}) == 4 * per_thread
