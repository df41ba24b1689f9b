"""Lazy re-exports for a package's ``__init__``: its public names, imported on first use.

``agent`` and ``llm`` modules are also loaded where startup time counts (the pytest plugin
the validation subprocess loads, the offline engine); an ``__init__`` that imported every
module eagerly would make each of those pay for the whole package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from ``package.exports[name]`` on use."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__
