"""The agent's memory: one SQLite row per cycle, in WAL mode, never silently reset.

A row is written when a cycle starts (``running``) and completed when it ends, so a cycle
cut short by ``kill -9`` is found on the next start and marked ``aborted``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hephaestus.agent.models import CycleResult, Outcome, Reason

if TYPE_CHECKING:  # `hephaestus history` reads memory without the resilience package
    from hephaestus.resilience.backoff import FailureStreak

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cycles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    correlation_id TEXT NOT NULL UNIQUE,
    trace_id TEXT NOT NULL DEFAULT '',
    cycle_number INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'running',
    objective TEXT, objective_kind TEXT, objective_file TEXT,
    outcome TEXT, reason TEXT, detail TEXT,
    strategy TEXT, commit_sha TEXT, files TEXT NOT NULL DEFAULT '[]',
    provider TEXT, model TEXT,
    llm_calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    durations TEXT NOT NULL DEFAULT '{}',
    started_at REAL NOT NULL, finished_at REAL,
    pid INTEGER
);
CREATE INDEX IF NOT EXISTS cycles_started ON cycles (started_at);
CREATE INDEX IF NOT EXISTS cycles_trace ON cycles (trace_id);
"""
_FAILING = (Outcome.FAILED.value,)


class MemoryStoreError(RuntimeError):
    """The memory database cannot be opened, read or written; the message says what to do."""


class Memory:
    """Cycle history in SQLite; safe to share between the cycle thread and HTTP handlers."""

    def __init__(self, path: Path, busy_timeout: float = 5.0, *, writable: bool = True) -> None:
        """Open (or create) the database; with ``writable``, prove a write lock can be taken.

        Read-only users (``hephaestus history``) pass ``writable=False`` and never write.
        """
        self.path = path
        self._lock = threading.Lock()
        self._conn = self._connect(busy_timeout)
        if writable:
            try:
                self._probe_write()
            except sqlite3.Error as exc:
                self._conn.close()
                raise self._error("open", exc) from None

    def _probe_write(self) -> None:
        """Take the write lock and open the table for writing, changing nothing."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("DELETE FROM cycles WHERE 0")  # fails on a read-only file
        finally:
            self._conn.execute("ROLLBACK")

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, check_same_thread=False, isolation_level=None
            )
            conn.row_factory = sqlite3.Row
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(
                    f"integrity check failed: {check.splitlines()[0][:200]}"
                )
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise MemoryStoreError(
                    f"memory database {self.path} has schema v{version}, newer than this "
                    f"Hephaestus (v{SCHEMA_VERSION}); upgrade Hephaestus or use another "
                    "agent.memory_path"
                )
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if version < SCHEMA_VERSION:  # only a new (or older) database is written on open
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, MemoryStoreError, OSError) as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, MemoryStoreError):
                raise
            if isinstance(exc, sqlite3.Error):
                raise self._error("open", exc) from None
            raise MemoryStoreError(
                f"cannot create memory database {self.path}: {exc.strerror}; "
                f"fix permissions or set agent.memory_path"
            ) from None
        return conn

    def _error(self, action: str, exc: sqlite3.Error) -> MemoryStoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            fix = "another process holds a lock on it; stop it or wait, then retry"
        elif "readonly" in text or "read-only" in text or "unable to open" in text:
            fix = "it is not writable; fix its permissions or set agent.memory_path"
        elif isinstance(exc, sqlite3.IntegrityError):
            fix = "it already holds a cycle with this correlation id; use a new one"
        else:
            fix = (
                "it looks corrupt; move it aside (it is never reset automatically) or restore "
                "a backup, then start again"
            )
        return MemoryStoreError(f"cannot {action} memory database {self.path}: {text}; {fix}")

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise self._error(action, exc) from None

    def check_writable(self) -> None:
        """Raise :class:`MemoryStoreError` unless the database can be written now."""
        with self._lock:
            try:
                self._probe_write()
            except sqlite3.Error as exc:
                raise self._error("write to", exc) from None

    def next_cycle_number(self) -> int:
        """One more than the highest cycle number recorded."""
        row = self._query("SELECT COALESCE(MAX(cycle_number), 0) FROM cycles")
        return int(row[0][0]) + 1

    def start_cycle(self, result: CycleResult) -> None:
        """Record that a cycle has started (status ``running``)."""
        with self._write("write to") as conn:
            conn.execute(
                "INSERT INTO cycles (correlation_id, trace_id, cycle_number, status, started_at,"
                " pid, provider) VALUES (?, ?, ?, 'running', ?, ?, ?)",
                (
                    result.correlation_id,
                    result.trace_id,
                    result.cycle_number,
                    result.started_at,
                    os.getpid(),
                    result.provider,
                ),
            )

    def finish_cycle(self, result: CycleResult) -> None:
        """Complete the cycle's row with its outcome, durations and usage."""
        objective = result.objective
        values = {
            "trace_id": result.trace_id,
            "status": "finished",
            "objective": objective.text if objective else None,
            "objective_kind": objective.kind if objective else None,
            "objective_file": objective.file_path if objective else None,
            "outcome": result.outcome.value,
            "reason": result.reason.value,
            "detail": result.detail[:2000],
            "strategy": result.strategy,
            "commit_sha": result.commit_sha,
            "files": json.dumps(list(result.files)),
            "provider": result.provider,
            "model": result.model,
            "llm_calls": result.llm_calls,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "durations": json.dumps(result.durations),
            "finished_at": result.finished_at,
        }
        assignments = ", ".join(f"{key} = :{key}" for key in values)
        with self._write("write to") as conn:
            conn.execute(
                f"UPDATE cycles SET {assignments} WHERE correlation_id = :cid",  # noqa: S608
                {**values, "cid": result.correlation_id},
            )

    def mark_interrupted(self) -> list[str]:
        """Mark cycles left ``running`` by a dead process as ``aborted``/``interrupted``."""
        with self._write("write to") as conn:
            rows = conn.execute("SELECT correlation_id, pid FROM cycles WHERE status = 'running'")
            stale = [r["correlation_id"] for r in rows if not _alive(r["pid"])]
            for cid in stale:
                conn.execute(
                    "UPDATE cycles SET status = 'finished', outcome = ?, reason = ?, detail = ?,"
                    " finished_at = ? WHERE correlation_id = ?",
                    (
                        Outcome.ABORTED.value,
                        Reason.INTERRUPTED.value,
                        "the process running this cycle died; recovered on restart",
                        time.time(),
                        cid,
                    ),
                )
        return stale

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest ``limit`` cycles, newest first, as plain dicts."""
        rows = self._query(
            "SELECT * FROM cycles ORDER BY started_at DESC, id DESC LIMIT ?", (max(0, limit),)
        )
        return [_row_dict(r) for r in rows]

    def finished_since(self, started_after: float, limit: int = 100_000) -> list[dict[str, Any]]:
        """Finished cycles started after ``started_after``, oldest first, at most ``limit``."""
        rows = self._query(
            "SELECT * FROM cycles WHERE status = 'finished' AND started_at > ?"
            " ORDER BY started_at, id LIMIT ?",
            (started_after, max(0, limit)),
        )
        return [_row_dict(r) for r in rows]

    def first_started(self) -> float | None:
        """When the oldest recorded cycle started, if any."""
        return self._query("SELECT MIN(started_at) FROM cycles")[0][0]

    def find(self, any_id: str) -> dict[str, Any] | None:
        """The cycle with this correlation id or trace id, if any."""
        rows = self._query(
            "SELECT * FROM cycles WHERE correlation_id = ? OR trace_id = ? LIMIT 1",
            (any_id, any_id),
        )
        return _row_dict(rows[0]) if rows else None

    def failure_counts(self, window: int) -> dict[str, int]:
        """How often each objective failed among the last ``window`` cycles."""
        return failure_counts(self.recent(window))

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error("read", exc) from None

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self._conn.close()


def failure_streak(rows: Iterable[dict[str, Any]]) -> FailureStreak:
    """The failure streak at the end of ``rows`` (newest first, as :meth:`Memory.recent`).

    The recorded cycles are replayed through :class:`FailureStreak`'s own rule, so a
    restarted agent resumes the very streak it would have counted had it kept running.
    """
    from hephaestus.resilience.backoff import FailureStreak

    finished = [row for row in rows if row["outcome"]]
    return FailureStreak.replay(
        (row["outcome"], row["started_at"] or 0.0, row["finished_at"] or 0.0)
        for row in reversed(finished)
    )


def failure_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How often each objective failed among ``rows`` (as :meth:`Memory.recent` returns)."""
    counts: dict[str, int] = {}
    for row in rows:
        if row["outcome"] in _FAILING and row["objective"]:
            counts[row["objective"]] = counts.get(row["objective"], 0) + 1
    return counts


def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["files"] = json.loads(data.get("files") or "[]")
    data["durations"] = json.loads(data.get("durations") or "{}")
    return data


def _alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True
