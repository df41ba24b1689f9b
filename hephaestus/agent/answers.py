"""What each role answers: one model per role, the source of its JSON schema and its check.

The brain, architect, code reviewer and maestro send these schemas as structured outputs
and validate every answer against them, so a missing or mistyped field fails the cycle as
``invalid_plan`` with the field named. Rules that are not about shape (a block must not be
empty, a strategy must be configured) are checked where the answer is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hephaestus.llm.schema import AnswerSchema, describe


@dataclass(frozen=True)
class ObjectiveAnswer:
    """The brain's answer: one objective, or ``null`` when nothing is worth doing."""

    objective: str | None = describe(
        "one small, checkable improvement in one sentence; null when nothing is worth doing"
    )
    kind: str | None = None
    file_path: str | None = None
    symbol: str | None = None
    rationale: str | None = None


@dataclass(frozen=True)
class ReplacePatch:
    """Replace ``block_to_replace`` (exact text, found once) with ``content``."""

    file_path: str
    operation: Literal["REPLACE"]
    block_to_replace: str = describe("text copied exactly from the file; it must occur once")
    content: str = describe("the text that replaces the block")


@dataclass(frozen=True)
class CreateFilePatch:
    """Create a new file holding ``content``."""

    file_path: str
    operation: Literal["CREATE_FILE"]
    content: str


@dataclass(frozen=True)
class InsertPatch:
    """Insert ``content`` before line ``line_number`` (1-based)."""

    file_path: str
    operation: Literal["INSERT"]
    line_number: int = describe("1-based; the content is inserted before this line")
    content: str = describe("the lines to insert")


@dataclass(frozen=True)
class DeleteBlockPatch:
    """Delete ``block_to_delete`` (exact text, found once)."""

    file_path: str
    operation: Literal["DELETE_BLOCK"]
    block_to_delete: str = describe("text copied exactly from the file; it must occur once")


PatchAnswer = ReplacePatch | CreateFilePatch | InsertPatch | DeleteBlockPatch


@dataclass(frozen=True)
class PatchPlanAnswer:
    """The architect's answer: an analysis and the patches that realise the objective."""

    analysis: str
    patches_to_apply: list[PatchAnswer]


@dataclass(frozen=True)
class ReviewAnswer:
    """The code reviewer's verdict on a plan."""

    approved: bool
    feedback: str = describe("why the plan is approved or rejected")


@dataclass(frozen=True)
class StrategyAnswer:
    """The maestro's pick among the configured validation strategies."""

    strategy: str = describe("the name of one configured strategy")
    rationale: str | None = None


OBJECTIVE = AnswerSchema("objective", ObjectiveAnswer)
PATCH_PLAN = AnswerSchema("patch_plan", PatchPlanAnswer)
REVIEW = AnswerSchema("review", ReviewAnswer)
STRATEGY = AnswerSchema("strategy", StrategyAnswer)
