"""The documentation stands alone: every link resolves inside the repository, and nothing
sends a reader to a design file that is not part of it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from factories import ROOT

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.M)
# "DESIGN §5", "DESIGN.md", "the improvement plan": pointers at documents this repo lacks
_OUTSIDE = re.compile(r"\bDESIGN\b|(?i:improvement plan)")
_TEXT = {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ""}
_THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()  # it spells them, to find them


def slug(heading: str) -> str:
    """A heading's anchor as GitHub renders it."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {slug(h) for h in _HEADING.findall(text)}


def local_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_in_the_docs_resolves_inside_the_repository(doc):
    broken = []
    for target in local_links(doc):
        file_part, _, anchor = target.partition("#")
        resolved = (doc.parent / file_part).resolve() if file_part else doc
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    assert broken == []


def test_the_architecture_page_is_linked_from_the_readme():
    assert "docs/architecture.md" in local_links(ROOT / "README.md")


def test_no_file_points_at_a_design_document_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    offenders = []
    for name in tracked:
        path = ROOT / name
        if not name or name == _THIS or path.suffix not in _TEXT or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [
            f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if _OUTSIDE.search(line)
        ]
    assert offenders == []
