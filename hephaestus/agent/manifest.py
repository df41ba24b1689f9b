"""Scan the workspace into a bounded manifest: files, symbols, sizes, tests, recent history."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hephaestus.agent.gitrepo import git
from hephaestus.agent.patches import TextFile

_MAX_PARSE_BYTES = 512_000
_TEST_NAME = re.compile(r"(^|/)(tests?/|test_[^/]*\.py$|[^/]*_test\.py$|conftest\.py$)")


def is_test_file(path: str) -> bool:
    """Whether ``path`` is part of a test suite: the oracle, which plans leave alone."""
    return bool(_TEST_NAME.search(path))


@dataclass(frozen=True)
class FileEntry:
    """One tracked file as the agent sees it."""

    path: str
    size: int
    lines: int
    is_test: bool
    symbols: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """What the agent knows at the start of a cycle; bounded so prompts stay small."""

    files: tuple[FileEntry, ...]
    total_files: int
    sources: dict[str, str] = field(default_factory=dict)
    recent_cycles: tuple[dict[str, Any], ...] = ()
    blocked_objectives: tuple[str, ...] = ()
    has_tests: bool = False  # decided from every tracked path, whatever the listing's cap

    @property
    def truncated(self) -> bool:
        """Whether more files exist than the manifest lists."""
        return self.total_files > len(self.files)

    def to_prompt(self) -> dict[str, Any]:
        """The manifest as the JSON object prompts carry."""
        return {
            "files": [
                {
                    "path": f.path,
                    "size": f.size,
                    "lines": f.lines,
                    "test": f.is_test,
                    "symbols": list(f.symbols),
                }
                for f in self.files
            ],
            "total_files": self.total_files,
            "truncated": self.truncated,
        }


def scan(
    root: Path,
    *,
    max_files: int,
    max_source_bytes: int,
    recent_cycles: tuple[dict[str, Any], ...] = (),
    blocked_objectives: tuple[str, ...] = (),
) -> Manifest:
    """Build the manifest of the tracked files under ``root``.

    Python sources go into ``sources`` (non-test files first, smallest paths first) until
    ``max_source_bytes`` is reached.
    """
    paths = sorted(p for p in git(["ls-files", "-z"], root).stdout.split("\0") if p)
    entries: list[FileEntry] = []
    sources: dict[str, str] = {}
    budget = max_source_bytes
    for path in paths[:max_files]:
        full = root / path
        if not full.is_file() or full.is_symlink():
            continue
        size = full.stat().st_size
        text = TextFile.decode(full.read_bytes()).text if size <= _MAX_PARSE_BYTES else ""
        symbols = _symbols(text) if path.endswith(".py") else ()
        entries.append(FileEntry(path, size, text.count("\n"), is_test_file(path), symbols))
        if path.endswith(".py") and not is_test_file(path) and text and len(text) <= budget:
            sources[path] = text
            budget -= len(text)
    return Manifest(
        files=tuple(entries),
        total_files=len(paths),
        sources=sources,
        recent_cycles=recent_cycles,
        blocked_objectives=blocked_objectives,
        has_tests=any(is_test_file(p) for p in paths),
    )


def _symbols(text: str) -> tuple[str, ...]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return ()
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
            if isinstance(node, ast.ClassDef):
                names.extend(
                    f"{node.name}.{n.name}"
                    for n in node.body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                )
    return tuple(names)
