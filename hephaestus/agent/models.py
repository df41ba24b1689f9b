"""The values that flow through a cycle: objectives, patch plans, reviews and outcomes."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from hephaestus.config import Role

# a correlation id names a worktree directory and a trace; one rule for the API and the CLI
_CORRELATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
CORRELATION_ID_RULE = (
    "1-128 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
)


def check_correlation_id(value: str) -> str:
    """Return ``value`` if it is a valid correlation id, else raise ``ValueError`` saying why."""
    if not isinstance(value, str) or not _CORRELATION_ID.fullmatch(value):
        raise ValueError(f"correlation id {value!r} is not valid; use {CORRELATION_ID_RULE}")
    return value


class Outcome(enum.StrEnum):
    """How a cycle ended. Only ``SUCCEEDED`` means a validated change was committed."""

    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"
    ABORTED = "aborted"


class Reason(enum.StrEnum):
    """The bounded reason code of a cycle outcome (a metric label, so never free text)."""

    COMMITTED = "committed"
    # rejected: the agent decided not to change anything
    NO_OBJECTIVE = "no_objective"
    REPEATED_OBJECTIVE = "repeated_objective"
    REVIEW_REJECTED = "review_rejected"
    DISCARDED = "discarded"
    NO_CHANGE = "no_change"
    # failed
    LLM_ERROR = "llm_error"
    INVALID_PLAN = "invalid_plan"
    PATCH_CONFLICT = "patch_conflict"
    UNSAFE_PATH = "unsafe_path"
    SYNTAX_ERROR = "syntax_error"
    TESTS_FAILED = "tests_failed"
    TIMEOUT = "timeout"
    INTERNAL_ERROR = "internal_error"
    # aborted
    SHUTDOWN = "shutdown"
    INTERRUPTED = "interrupted"

    @property
    def outcome(self) -> Outcome:
        """The outcome this reason belongs to."""
        return _OUTCOME_OF[self]


_OUTCOME_OF = {
    Reason.COMMITTED: Outcome.SUCCEEDED,
    **{
        r: Outcome.REJECTED
        for r in (
            Reason.NO_OBJECTIVE,
            Reason.REPEATED_OBJECTIVE,
            Reason.REVIEW_REJECTED,
            Reason.DISCARDED,
            Reason.NO_CHANGE,
        )
    },
    **{r: Outcome.ABORTED for r in (Reason.SHUTDOWN, Reason.INTERRUPTED)},
}
for _reason in Reason:
    _OUTCOME_OF.setdefault(_reason, Outcome.FAILED)


class Stage(enum.StrEnum):
    """The stages of a cycle, in order (also the ``stage`` metric label)."""

    SCAN = "scan"
    OBJECTIVE = "objective"
    PLAN = "plan"
    REVIEW = "review"
    STRATEGY = "strategy"
    APPLY = "apply"
    VALIDATE = "validate"
    COMMIT = "commit"
    RECORD = "record"


AGENT_OF_STAGE: dict[str, Role] = {
    Stage.OBJECTIVE: Role.BRAIN,
    Stage.PLAN: Role.ARCHITECT,
    Stage.REVIEW: Role.CODE_REVIEWER,
    Stage.STRATEGY: Role.MAESTRO,
}
"""The stages whose work is a model call, and the role that answers in each."""


class CycleError(Exception):
    """A stage ended the cycle early; ``reason`` decides the outcome."""

    def __init__(self, reason: Reason, detail: str, *, error_type: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.error_type = error_type or reason.value


class CycleAborted(BaseException):
    """Raised into the cycle by the shutdown handler when the grace period is over.

    A ``BaseException`` so that no ``except Exception`` on the way swallows it.
    """

    reason = Reason.SHUTDOWN


@dataclass(frozen=True)
class Objective:
    """One small, checkable improvement the agent will try in this cycle."""

    text: str
    kind: str = "freeform"
    file_path: str | None = None
    symbol: str | None = None
    rationale: str = ""
    source: str = "brain"

    def to_json(self) -> dict[str, Any]:
        """The objective as the JSON object the prompts carry."""
        return {
            "objective": self.text,
            "kind": self.kind,
            "file_path": self.file_path,
            "symbol": self.symbol,
            "rationale": self.rationale,
        }


class Operation(enum.StrEnum):
    """What one patch does to one file."""

    REPLACE = "REPLACE"
    CREATE_FILE = "CREATE_FILE"
    INSERT = "INSERT"
    DELETE_BLOCK = "DELETE_BLOCK"


@dataclass(frozen=True)
class Patch:
    """One edit of a patch plan; ``block`` is the exact text to replace or delete."""

    file_path: str
    operation: Operation
    content: str = ""
    block: str = ""
    line_number: int | None = None


@dataclass(frozen=True)
class PatchPlan:
    """The architect's answer: an analysis and the ordered patches that realise it."""

    analysis: str
    patches: tuple[Patch, ...]

    @property
    def files(self) -> tuple[str, ...]:
        """The distinct files the plan touches, in first-touch order."""
        return tuple(dict.fromkeys(p.file_path for p in self.patches))


@dataclass(frozen=True)
class Review:
    """The code reviewer's verdict on a plan."""

    approved: bool
    feedback: str
    by_rule: bool = False


@dataclass(frozen=True)
class StrategyChoice:
    """The maestro's pick: a configured validation strategy and its ordered steps."""

    name: str
    steps: tuple[str, ...]
    rationale: str = ""


@dataclass
class CycleResult:
    """What one cycle did; the orchestrator fills it and memory stores it."""

    correlation_id: str
    cycle_number: int = 0
    trace_id: str = ""
    objective: Objective | None = None
    outcome: Outcome = Outcome.FAILED
    reason: Reason = Reason.INTERNAL_ERROR
    detail: str = ""
    commit_sha: str | None = None
    files: tuple[str, ...] = ()
    strategy: str | None = None
    provider: str = ""
    model: str = ""
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    durations: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def duration(self) -> float:
        """Wall-clock seconds from start to end of the cycle."""
        return max(0.0, self.finished_at - self.started_at)

    def end(self, reason: Reason, detail: str = "") -> None:
        """Set the reason (and the outcome it implies) and a one-line detail."""
        self.reason = reason
        self.outcome = reason.outcome
        self.detail = detail
