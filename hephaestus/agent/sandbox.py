"""Where the project's tests run: in a bubblewrap sandbox, or (knowingly) on the host.

Validation executes code a model wrote. Under ``bwrap`` that code runs in new network, PID,
IPC and UTS namespaces (no network, no view of the agent's processes or environment), with
every capability dropped, dies with the agent, and sees the host read-only with the homes,
``/run``, ``/tmp`` and the target repository hidden. It may write only the worktree, a
private ``/tmp`` and the files the agent names (the span file). Its environment is built
from an allowlist and never carries a secret, sandboxed or not.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hephaestus.config import ConfigError

_BWRAP = "bwrap"
BWRAP_PACKAGE = "bubblewrap"
_SANDBOX_HOME = "/tmp"  # noqa: S108 - inside the sandbox: a private, empty tmpfs
_SAFE_NAMES = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "PYTHONUTF8",
        "PYTHONIOENCODING",
        "VIRTUAL_ENV",
        "TRACEPARENT",
        "BAGGAGE",
    }
)
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)
# always hidden under bwrap: homes (keys, cloud credentials), /run (sockets such as
# docker.sock stay reachable on a read-only mount), the host's /tmp
_HIDDEN = ("/root", "/home", "/run", "/var/run", "/tmp")  # noqa: S108 - hidden, not used
_ISOLATION = (
    "--unshare-net",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
)


class SandboxUnavailable(ConfigError):
    """``validation.sandbox = "bwrap"`` but bubblewrap is missing or cannot start here."""


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    return bool(_SECRET_NAME.search(name.rstrip("_")))


def validation_env(
    source: Mapping[str, str],
    extra: Mapping[str, str],
    *,
    secret: str = "",
    passed: Iterable[str] = (),
) -> dict[str, str]:
    """The environment of the tests: an allowlist of ``source`` plus ``extra``.

    ``passed`` names more variables to keep (``validation.pass_env``). ``secret`` (the
    variable named by ``llm.api_key_env``) and anything named like a key, token, secret or
    password never get through, whoever asked for them.
    """
    allowed = _SAFE_NAMES | set(passed)
    env = {
        name: value for name, value in source.items() if name in allowed or name.startswith("LC_")
    }
    env.update(extra)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return {
        name: value
        for name, value in env.items()
        if name != secret and (name in _SAFE_NAMES or not is_secret_name(name))
    }


@dataclass(frozen=True)
class Sandbox:
    """How validation runs: ``bwrap`` (isolated) or ``none``, and why when it is not isolated."""

    mode: str
    bwrap: str | None = None
    reason: str = ""

    @property
    def isolated(self) -> bool:
        """Whether the tests run inside bubblewrap."""
        return self.mode == "bwrap"

    def status(self) -> dict[str, object]:
        """The sandbox as ``/api/health`` shows it: ``ok`` when isolated, else ``degraded``."""
        if self.isolated:
            return {"status": "ok", "mode": self.mode, "bwrap": self.bwrap}
        return {"status": "degraded", "mode": self.mode, "reason": self.reason}

    def private_env(self, source: Mapping[str, str]) -> dict[str, str]:
        """``HOME`` and ``TMPDIR`` for the tests: the private ``/tmp`` in the sandbox."""
        if self.isolated:
            return {"HOME": _SANDBOX_HOME, "TMPDIR": _SANDBOX_HOME}
        return {k: source[k] for k in ("HOME", "TMPDIR") if k in source}

    def command(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        writable: Iterable[Path] = (),
        hidden: Iterable[Path] = (),
        readable: Iterable[Path] = (),
    ) -> list[str]:
        """``argv`` wrapped in bubblewrap (unchanged when not isolated).

        ``workdir`` and ``writable`` are the only host paths it may write; ``hidden`` are
        replaced by empty directories; ``readable`` are shown again (read-only) inside them.
        """
        if not self.isolated or self.bwrap is None:
            return list(argv)
        args = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        # the most specific path wins: parents first, and on a tie the hiding comes last
        views = [(p, 0, "--ro-bind") for p in _existing([*_python_paths(), *readable])]
        views += [
            (p, 1, "--tmpfs") for p in _existing_dirs([*map(Path, _HIDDEN), Path.home(), *hidden])
        ]
        for path, _, option in sorted(views, key=lambda v: (len(v[0].parts), v[1], str(v[0]))):
            args += [option, str(path)] if option == "--tmpfs" else [option, str(path), str(path)]
        for path in sorted(_existing([workdir, *writable]), key=lambda p: len(p.parts)):
            args += ["--bind", str(path), str(path)]
        return [*args, *_ISOLATION, "--chdir", str(workdir), "--", *argv]


def _python_paths() -> list[Path]:
    """What the tests' interpreter needs to read: prefixes, site-packages, this package."""
    import hephaestus

    candidates = {
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        *site.getsitepackages(),
        site.getusersitepackages(),
        str(Path(hephaestus.__file__).resolve().parent.parent),
        *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)),
    }
    return [Path(p) for p in candidates]


def _existing(paths: Iterable[Path]) -> list[Path]:
    return list(dict.fromkeys(p.resolve() for p in paths if p.exists()))


def _existing_dirs(paths: Iterable[Path]) -> list[Path]:
    return list(
        dict.fromkeys(p for p in paths if p.is_dir() and not p.is_symlink() and p != Path(p.anchor))
    )


def resolve_sandbox(mode: str, which: Callable[[str], str | None] = shutil.which) -> Sandbox:
    """The sandbox for ``validation.sandbox``: ``auto`` is bwrap when it works here.

    Raises :class:`SandboxUnavailable` when ``bwrap`` was asked for and cannot be used.
    """
    if mode == "none":
        return Sandbox(
            "none",
            reason='validation.sandbox = "none": the tests run on the host with this '
            "process's permissions, files and network",
        )
    path = which(_BWRAP)
    problem = f"bubblewrap ({_BWRAP}) is not installed" if path is None else _probe(path)
    if problem is None:
        return Sandbox("bwrap", bwrap=path)
    if mode == "bwrap":
        raise SandboxUnavailable(
            f'validation.sandbox = "bwrap" but {problem}; install the Debian package '
            f"{BWRAP_PACKAGE} (apt-get install {BWRAP_PACKAGE}) or set validation.sandbox "
            f'= "none" to run the tests unsandboxed'
        )
    return Sandbox(
        "none",
        reason=f"{problem}: the code a model writes runs on the host with this process's "
        f"permissions, files and network; install the Debian package {BWRAP_PACKAGE}",
    )


def _probe(bwrap: str) -> str | None:
    """Why ``bwrap`` cannot start a sandbox here, or ``None`` when it can."""
    try:
        with tempfile.TemporaryDirectory(prefix="hephaestus-probe-") as workdir:
            probe = Sandbox("bwrap", bwrap=bwrap).command(["true"], workdir=Path(workdir))
            done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{bwrap} cannot start a sandbox here ({exc})"
    if done.returncode != 0:
        return f"{bwrap} cannot start a sandbox here ({done.stderr.strip()[:200]})"
    return None
