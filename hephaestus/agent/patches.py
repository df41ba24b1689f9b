"""Parse patch plans and apply them to a directory: exact, single matches and safe paths only.

Blocks are matched as plain text (never as a regex) and must occur exactly once; a file keeps
its encoding, byte-order mark, line endings and trailing newline. Anything else fails the
cycle with ``invalid_plan``, ``patch_conflict`` or ``unsafe_path`` before a byte is written.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from hephaestus.agent.answers import (
    PATCH_PLAN,
    DeleteBlockPatch,
    InsertPatch,
    PatchAnswer,
    PatchPlanAnswer,
    ReplacePatch,
)
from hephaestus.agent.models import CycleError, Operation, Patch, PatchPlan, Reason
from hephaestus.llm.schema import AnswerError

_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
_RESERVED_DIRS = (".git", ".hephaestus")


DEFAULT_MAX_FILE_BYTES = 262_144


def parse_plan(data: Any, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> PatchPlan:
    """Turn the architect's decoded JSON into a :class:`PatchPlan`; fail with ``invalid_plan``."""
    try:
        answer = PATCH_PLAN.validate(data)
    except AnswerError as exc:
        raise _invalid(str(exc)) from None
    return plan_from_answer(answer, max_file_bytes)


def plan_from_answer(
    answer: PatchPlanAnswer, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> PatchPlan:
    """The plan of an answer that fits the schema, after the rules the schema cannot state.

    The new content one plan writes into one file is capped at ``max_file_bytes``.
    """
    if not answer.patches_to_apply:
        raise _invalid("the plan has no patches")
    patches = tuple(_patch(i, item) for i, item in enumerate(answer.patches_to_apply))
    _check_sizes(patches, max_file_bytes)
    return PatchPlan(analysis=answer.analysis, patches=patches)


def _patch(index: int, item: PatchAnswer) -> Patch:
    where = f"patches_to_apply[{index}]"
    if not item.file_path.strip():
        raise _invalid(f"field {where}.file_path is empty")
    operation = Operation(item.operation)
    if isinstance(item, ReplacePatch | DeleteBlockPatch):
        key = "block_to_replace" if isinstance(item, ReplacePatch) else "block_to_delete"
        block = getattr(item, key)
        if not block:
            raise _invalid(f"field {where}.{key} is empty ({operation} needs the exact text)")
        content = item.content if isinstance(item, ReplacePatch) else ""
        return Patch(item.file_path, operation, content=content, block=block)
    if isinstance(item, InsertPatch):
        if item.line_number < 1:
            raise _invalid(f"field {where}.line_number must be >= 1, got {item.line_number}")
        return Patch(item.file_path, operation, content=item.content, line_number=item.line_number)
    return Patch(item.file_path, operation, content=item.content)


def _check_sizes(patches: tuple[Patch, ...], limit: int) -> None:
    written: dict[str, int] = {}
    for patch in patches:
        size = len(patch.content.encode("utf-8", "surrogatepass"))
        written[patch.file_path] = written.get(patch.file_path, 0) + size
        if written[patch.file_path] > limit:
            raise _invalid(
                f"the plan writes over {limit} bytes into {patch.file_path[:200]!r} "
                f"(agent.max_plan_file_bytes)"
            )


def confine_plan(plan: PatchPlan, root: Path) -> None:
    """Fail with ``unsafe_path`` unless every path of ``plan`` stays inside ``root``.

    Runs before anything reads a plan's file (the reviewer shows them to a model).
    """
    for path in plan.files:
        safe_path(root, path)


def _invalid(detail: str) -> CycleError:
    return CycleError(Reason.INVALID_PLAN, detail)


def safe_path(root: Path, relative: str) -> Path:
    """Resolve ``relative`` inside ``root`` or fail with ``unsafe_path``.

    Rejected: absolute paths (POSIX or Windows), ``..`` parts, anything under ``.git/`` or
    ``.hephaestus/``, NUL bytes, and paths whose symlinks resolve outside ``root``.
    """
    if "\x00" in relative:
        raise _unsafe(relative, "contains a NUL byte")
    if (
        PurePosixPath(relative.replace("\\", "/")).is_absolute()
        or PureWindowsPath(relative).is_absolute()
        or PureWindowsPath(relative).drive
    ):
        raise _unsafe(relative, "is absolute")
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if ".." in parts:
        raise _unsafe(relative, "climbs out with '..'")
    if (parts and parts[0] in _RESERVED_DIRS) or any(p == ".git" for p in parts):
        raise _unsafe(relative, "points into a reserved directory (.git/ or .hephaestus/)")
    if not parts or parts == (".",):
        raise _unsafe(relative, "names no file")
    real_root = root.resolve()
    target = (real_root / Path(*parts)).resolve()
    if target != real_root and real_root not in target.parents:
        raise _unsafe(relative, "resolves through a symlink to outside the repository")
    return real_root / Path(*parts)


def _unsafe(path: str, why: str) -> CycleError:
    return CycleError(Reason.UNSAFE_PATH, f"path {path!r} {why}")


@dataclass
class TextFile:
    """A file's text with the encoding, BOM and newline style needed to write it back."""

    text: str
    encoding: str = "utf-8"
    bom: bytes = b""
    newline: str = "\n"

    @classmethod
    def decode(cls, raw: bytes) -> TextFile:
        """Decode bytes, remembering BOM, PEP 263 coding cookie and CRLF line endings."""
        bom = codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b""
        body = raw[len(bom) :]
        encoding = "utf-8"
        cookie = _CODING_RE.search(b"\n".join(body.splitlines()[:2]))
        if cookie and not bom:
            encoding = cookie.group(1).decode("ascii")
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            encoding = "latin-1"
            text = body.decode(encoding)
        newline = "\r\n" if "\r\n" in text else "\n"
        return cls(text=text.replace("\r\n", "\n"), encoding=encoding, bom=bom, newline=newline)

    def encode(self) -> bytes:
        """Encode back with the original encoding, BOM and newline style."""
        text = self.text.replace("\n", self.newline) if self.newline != "\n" else self.text
        try:
            return self.bom + text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            raise CycleError(
                Reason.PATCH_CONFLICT,
                f"new text cannot be encoded as {self.encoding}: {exc.reason}",
            ) from None


def planned_files(plan: PatchPlan, root: Path) -> dict[str, tuple[Path, TextFile]]:
    """Every file the plan touches as it would be after the plan, computed in memory.

    Keys are the confined paths relative to ``root``; nothing is written.
    """
    pending: dict[str, tuple[Path, TextFile]] = {}
    for patch in plan.patches:
        path = safe_path(root, patch.file_path)
        key = path.relative_to(root.resolve()).as_posix()
        seen = key in pending
        if not seen:
            pending[key] = (path, _read(path, patch) or TextFile(""))
        current = pending[key][1]
        exists = seen or patch.operation is not Operation.CREATE_FILE
        current.text = _apply_one(patch, current.text, exists=exists)
    return pending


def apply_plan(plan: PatchPlan, root: Path) -> tuple[str, ...]:
    """Apply every patch under ``root``; return the touched paths.

    All patches are checked and computed in memory first, so a plan that fails part-way
    writes nothing.
    """
    pending = planned_files(plan, root)
    encoded = [(target, current.encode()) for target, current in pending.values()]
    for target, data in encoded:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return tuple(pending)


def _read(path: Path, patch: Patch) -> TextFile | None:
    if patch.operation is Operation.CREATE_FILE:
        if path.exists():
            raise CycleError(
                Reason.PATCH_CONFLICT, f"{patch.file_path} already exists (CREATE_FILE)"
            )
        return None
    if not path.is_file():
        raise CycleError(
            Reason.PATCH_CONFLICT, f"{patch.file_path} does not exist ({patch.operation})"
        )
    return TextFile.decode(path.read_bytes())


def _apply_one(patch: Patch, text: str, *, exists: bool) -> str:
    content = patch.content.replace("\r\n", "\n")
    if patch.operation is Operation.CREATE_FILE:
        if exists:
            raise CycleError(
                Reason.PATCH_CONFLICT, f"{patch.file_path} already exists (CREATE_FILE)"
            )
        return content if content.endswith("\n") or not content else content + "\n"
    if patch.operation is Operation.INSERT:
        return _insert(patch, text, content)
    start = _find_once(patch, text, patch.block.replace("\r\n", "\n"))
    end = start + len(patch.block.replace("\r\n", "\n"))
    replacement = content if patch.operation is Operation.REPLACE else ""
    new = text[:start] + replacement + text[end:]
    return _keep_trailing_newline(text, new)


def _find_once(patch: Patch, text: str, block: str) -> int:
    count = text.count(block)
    if count == 1 and text.find(block, text.index(block) + 1) != -1:
        count = 2  # overlapping occurrences, which str.count does not see
    if count != 1:
        what = "not found" if count == 0 else f"found {count} times (ambiguous)"
        raise CycleError(
            Reason.PATCH_CONFLICT,
            f"{patch.operation} block {what} in {patch.file_path}: {block[:60]!r}",
        )
    return text.index(block)


def _insert(patch: Patch, text: str, content: str) -> str:
    lines = text.splitlines(keepends=True)
    index = (patch.line_number or 1) - 1
    if index > len(lines):
        raise CycleError(
            Reason.PATCH_CONFLICT,
            f"INSERT at line {patch.line_number} of "
            f"{patch.file_path}, which has {len(lines)} lines",
        )
    if lines and index == len(lines) and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if content and not content.endswith("\n"):
        content += "\n"
    return _keep_trailing_newline(text, "".join(lines[:index]) + content + "".join(lines[index:]))


def _keep_trailing_newline(before: str, after: str) -> str:
    if before.endswith("\n") and after and not after.endswith("\n"):
        return after + "\n"
    if before and not before.endswith("\n") and after.endswith("\n"):
        return after.rstrip("\n")
    return after
