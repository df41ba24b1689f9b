"""Find real, mechanical improvement opportunities in Python source with ``ast``.

The offline provider proposes these as objectives and turns each into the patch plan a
model would write. Every finder is conservative: when in doubt it finds nothing.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

_BARE_EXCEPT = re.compile(r"^(\s*)except\s*:")
_NONE_CMP = re.compile(r"^(?P<left>.*?)\s*(?P<op>==|!=)\s*None$", re.DOTALL)


@dataclass(frozen=True)
class Opportunity:
    """One improvement in one file, with the patches (plan JSON) that realise it."""

    kind: str
    file_path: str
    line: int
    symbol: str
    objective: str
    patches: list[dict[str, Any]] = field(compare=False, hash=False)

    @property
    def key(self) -> str:
        """A stable identity within one version of the file."""
        return f"{self.kind}:{self.file_path}:{self.symbol}"


def find_opportunities(path: str, source: str) -> list[Opportunity]:
    """Every opportunity in one Python file, in line order.

    Which files are tests is the agent's call: the offline provider leaves alone the files
    the prompt's manifest marks as tests.
    """
    if not path.endswith(".py"):
        return []
    with _LATEST_LOCK:
        remembered = _LATEST.get(path)
    if remembered is not None and remembered[0] == source:
        return list(remembered[1])
    found = _opportunities(path, source)
    with _LATEST_LOCK:
        _LATEST[path] = (source, found)
    return list(found)


# the latest version of each file and what it holds: each cycle's prompt carries the same
# unchanged files again, and only one version a path is kept, so memory follows the tree
_LATEST: dict[str, tuple[str, tuple[Opportunity, ...]]] = {}
_LATEST_LOCK = threading.Lock()


def _opportunities(path: str, source: str) -> tuple[Opportunity, ...]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    lines = source.splitlines(keepends=True)
    found: list[Opportunity] = []
    for finder in _FINDERS:
        found.extend(finder(path, tree, lines))
    return tuple(sorted(found, key=lambda o: (o.line, o.kind)))


def _module_docstring(path: str, tree: ast.Module, lines: list[str]) -> Iterator[Opportunity]:
    if not tree.body or ast.get_docstring(tree) is not None:
        return
    stem = PurePosixPath(path).stem
    package = PurePosixPath(path).parent.name or "the project"
    name = package if stem == "__init__" else stem
    public = [n.name for n in tree.body if isinstance(n, _DEFS) and not n.name.startswith("_")]
    summary = f"{_words(name).capitalize()} for {package}"
    if public:
        shown = ", ".join(public[:3]) + (" and more" if len(public) > 3 else "")
        summary += f": {shown}"
    content = f'"""{summary}."""\n\n'
    yield Opportunity(
        "module_docstring",
        path,
        1,
        "<module>",
        f"Add a module docstring to {path}",
        [
            {
                "file_path": path,
                "operation": "INSERT",
                "line_number": _first_code_line(tree, lines),
                "content": content,
            }
        ],
    )


def _first_code_line(tree: ast.Module, lines: list[str]) -> int:
    first = tree.body[0]
    decorators = getattr(first, "decorator_list", [])
    return min([first.lineno, *(d.lineno for d in decorators)])


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _function_docstrings(path: str, tree: ast.Module, lines: list[str]) -> Iterator[Opportunity]:
    for node, qualname in _walk_defs(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if node.name.startswith("_") or ast.get_docstring(node) is not None:
            continue
        first = node.body[0]
        line = lines[first.lineno - 1]
        indent = line[: first.col_offset]
        if indent.strip() or first.lineno == node.lineno:
            continue
        summary = _words(node.name).capitalize()
        yield Opportunity(
            "function_docstring",
            path,
            node.lineno,
            qualname,
            f"Add a docstring to {qualname}() in {path}",
            [
                {
                    "file_path": path,
                    "operation": "INSERT",
                    "line_number": first.lineno,
                    "content": f'{indent}"""{summary}."""\n',
                }
            ],
        )


def _walk_defs(tree: ast.AST, prefix: str = "") -> Iterator[tuple[ast.AST, str]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, _DEFS):
            qualname = f"{prefix}{node.name}"
            yield node, qualname
            if isinstance(node, ast.ClassDef):
                yield from _walk_defs(node, qualname + ".")


def _unused_imports(path: str, tree: ast.Module, lines: list[str]) -> Iterator[Opportunity]:
    if PurePosixPath(path).name == "__init__.py":
        return
    used = _used_names(tree)
    for node in tree.body:
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.col_offset != 0:
            continue
        end_line, end_col = node.end_lineno or node.lineno, node.end_col_offset or 0
        if lines[end_line - 1].encode()[end_col:].strip():
            continue  # code or a comment (say, a noqa marker) shares the line: leave it
        if isinstance(node, ast.ImportFrom) and (
            node.module == "__future__" or any(a.name == "*" for a in node.names)
        ):
            continue
        unused = [a for a in node.names if _bound_name(a) not in used]
        if not unused:
            continue
        names = ", ".join(_bound_name(a) for a in unused)
        block = "".join(lines[node.lineno - 1 : node.end_lineno])
        if len(unused) == len(node.names):
            patch = {"file_path": path, "operation": "DELETE_BLOCK", "block_to_delete": block}
        else:
            kept = [a for a in node.names if a not in unused]
            new = type(node)(**{**node.__dict__, "names": kept})
            patch = {
                "file_path": path,
                "operation": "REPLACE",
                "block_to_replace": block,
                "content": ast.unparse(new) + "\n",
            }
        yield Opportunity(
            "unused_import",
            path,
            node.lineno,
            names,
            f"Remove unused import {names} from {path}",
            [patch],
        )


def _bound_name(alias: ast.alias) -> str:
    return alias.asname or alias.name.split(".")[0]


def _used_names(tree: ast.Module) -> set[str]:
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            used.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node.value))
    return used


def _none_comparisons(path: str, tree: ast.Module, lines: list[str]) -> Iterator[Opportunity]:
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], (ast.Eq, ast.NotEq))
            and isinstance(node.comparators[0], ast.Constant)
            and node.comparators[0].value is None
            and node.lineno == node.end_lineno
        ):
            continue
        line = lines[node.lineno - 1]
        segment = line.encode()[node.col_offset : node.end_col_offset].decode()
        match = _NONE_CMP.match(segment)
        if not match:
            continue
        op = "is None" if match["op"] == "==" else "is not None"
        prefix, suffix = (
            line.encode()[: node.col_offset].decode(),
            line.encode()[node.end_col_offset :].decode(),
        )
        new_line = f"{prefix}{match['left']} {op}{suffix}"
        yield _line_fix(
            "none_comparison",
            path,
            lines,
            node.lineno,
            new_line,
            f"Compare with `{op}` instead of `{match['op']} None` in {path}:{node.lineno}",
        )


def _bare_excepts(path: str, tree: ast.Module, lines: list[str]) -> Iterator[Opportunity]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is None:
            line = lines[node.lineno - 1]
            if not _BARE_EXCEPT.match(line):
                continue
            new_line = _BARE_EXCEPT.sub(r"\1except Exception:", line, count=1)
            yield _line_fix(
                "bare_except",
                path,
                lines,
                node.lineno,
                new_line,
                f"Catch Exception instead of a bare except: in {path}:{node.lineno}",
            )


def _line_fix(
    kind: str, path: str, lines: list[str], lineno: int, new_line: str, objective: str
) -> Opportunity:
    """Replace one line, widening the block with neighbours until it matches exactly once."""
    text = "".join(lines)
    start = end = lineno - 1
    while text.count("".join(lines[start : end + 1])) > 1 and (start > 0 or end < len(lines) - 1):
        start, end = max(0, start - 1), min(len(lines) - 1, end + 1)
    block = "".join(lines[start : end + 1])
    content = "".join(lines[start : lineno - 1]) + new_line + "".join(lines[lineno : end + 1])
    return Opportunity(
        kind,
        path,
        lineno,
        f"line {lineno}",
        objective,
        [
            {
                "file_path": path,
                "operation": "REPLACE",
                "block_to_replace": block,
                "content": content,
            }
        ],
    )


def _words(name: str) -> str:
    return " ".join(part for part in name.strip("_").split("_") if part) or name


_FINDERS: tuple[Callable[[str, ast.Module, list[str]], Iterator[Opportunity]], ...] = (
    _module_docstring,
    _function_docstrings,
    _unused_imports,
    _none_comparisons,
    _bare_excepts,
)
