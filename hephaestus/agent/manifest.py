"""Scan the workspace into a bounded manifest: files, symbols, sizes, tests, recent history."""

from __future__ import annotations

import ast
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hephaestus.agent.gitrepo import git
from hephaestus.agent.patches import TextFile

_MAX_PARSE_BYTES = 512_000
_REGULAR_MODES = ("100644", "100755")
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
    """Build the manifest of the tracked files under ``root`` (a clean checkout).

    One ``git ls-files --stage`` lists every path with its blob id; a blob seen before
    (in an earlier cycle) is not read or parsed again, so a scan costs little more than
    that listing plus the files that changed. Python sources go into ``sources`` (in path
    order) until ``max_source_bytes`` is reached.
    """
    listed = _tracked_blobs(root)
    entries: list[FileEntry] = []
    sources: dict[str, str] = {}
    budget = max_source_bytes
    for path, blob in listed[:max_files]:
        if blob is None:  # a symlink or a submodule: nothing the agent reads
            continue
        facts = _BLOBS.facts(root, path, blob, max_source_bytes)
        if facts is None:
            continue
        test = is_test_file(path)
        entries.append(FileEntry(path, facts.size, facts.lines, test, facts.symbols))
        text = facts.text
        if path.endswith(".py") and not test and text and len(text) <= budget:
            sources[path] = text
            budget -= len(text)
    _BLOBS.retain({blob for _, blob in listed[:max_files] if blob is not None})
    return Manifest(
        files=tuple(entries),
        total_files=len(listed),
        sources=sources,
        recent_cycles=recent_cycles,
        blocked_objectives=blocked_objectives,
        has_tests=any(is_test_file(p) for p, _ in listed),
    )


def _tracked_blobs(root: Path) -> list[tuple[str, str | None]]:
    """``(path, blob id)`` of every tracked path, sorted; ``None`` for non-regular files."""
    listed = []
    for record in git(["ls-files", "--stage", "-z"], root).stdout.split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, blob, _stage = meta.split(" ")
        listed.append((path, blob if mode in _REGULAR_MODES else None))
    return sorted(dict(listed).items())  # a conflicted path is listed once per stage


@dataclass(frozen=True)
class _BlobFacts:
    size: int
    lines: int
    symbols: tuple[str, ...]
    text: str  # kept only for Python files that could fit in the prompt's sources


class _BlobCache:
    """What a scan learned from each blob, least recently used first; bounded.

    After each scan only the blobs of the tree just scanned are kept (:meth:`retain`): the
    versions a cycle replaced are dropped, so a long-running agent's memory follows the
    size of the repository, not the number of cycles it has run.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._facts: OrderedDict[tuple[str, bool, int], _BlobFacts] = OrderedDict()
        self._lock = threading.Lock()

    def facts(self, root: Path, path: str, blob: str, max_text: int) -> _BlobFacts | None:
        """The facts of ``blob`` (read from ``root/path`` the first time), or ``None``."""
        key = (blob, path.endswith(".py"), max_text)
        with self._lock:
            found = self._facts.get(key)
            if found is not None:
                self._facts.move_to_end(key)
                return found
        try:
            found = _learn(root / path, python=key[1], max_text=max_text)
        except OSError:
            return None
        with self._lock:
            self._facts[key] = found
            while len(self._facts) > self.max_entries:
                self._facts.popitem(last=False)
        return found

    def retain(self, blobs: set[str]) -> None:
        """Forget every blob but ``blobs``."""
        with self._lock:
            for key in [key for key in self._facts if key[0] not in blobs]:
                del self._facts[key]


def _learn(full: Path, *, python: bool, max_text: int) -> _BlobFacts:
    size = full.stat().st_size
    text = TextFile.decode(full.read_bytes()).text if size <= _MAX_PARSE_BYTES else ""
    symbols = _symbols(text) if python else ()
    kept = text if python and len(text) <= max_text else ""
    return _BlobFacts(size, text.count("\n"), symbols, kept)


_BLOBS = _BlobCache()


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
