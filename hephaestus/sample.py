"""The bundled sample project and the demo repository made from it."""

from __future__ import annotations

import shutil
from pathlib import Path

from hephaestus.agent import GitRepo, git

_SAMPLE_NAME = "inventory"


def bundled_sample() -> Path:
    """The sample project: installed package data, or ``examples/`` in a source checkout."""
    installed = Path(__file__).parent / "_examples" / _SAMPLE_NAME
    if installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parent.parent / "examples" / _SAMPLE_NAME
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        "the bundled sample project is missing from this installation; reinstall hephaestus"
    )


def create_demo_repo(workdir: Path) -> Path:
    """Copy the sample into ``workdir`` (new or empty) and commit it as a fresh git repo."""
    if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        raise FileExistsError(
            f"{workdir} already exists and is not empty; pass a new or empty "
            "--workdir (or remove it)"
        )
    shutil.copytree(
        bundled_sample(),
        workdir,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".benchmarks"),
    )
    git(["init", "-q"], workdir)
    repo = GitRepo(workdir)
    env = repo.identity_env()
    git(["add", "-A"], workdir, env=env)
    git(["commit", "-q", "-m", "chore: import the inventory sample project"], workdir, env=env)
    return workdir
