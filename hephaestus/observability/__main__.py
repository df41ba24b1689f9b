"""``python -m hephaestus.observability``: write the generated files, or check them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hephaestus.observability import alerts
from hephaestus.observability.files import COMMAND, GenerationError, stale, write


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the rules, dashboards and data sources."""
    parser = argparse.ArgumentParser(
        prog="python -m hephaestus.observability",
        description="Generate the Prometheus rules, Grafana dashboards and data sources.",
    )
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="repository root (default: .)"
    )
    parser.add_argument(
        "--runbook-url",
        default=alerts.RUNBOOK,
        help="base of each alert's runbook_url, e.g. the hosted docs/runbooks.md "
        f"(default: {alerts.RUNBOOK})",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a committed file is out of date"
    )
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.root, args.runbook_url)
        for path in outdated:
            print(f"out of date: {path} (run `{COMMAND}`)", file=sys.stderr)
        return 1 if outdated else 0
    try:
        changed = write(args.root, args.runbook_url)
    except GenerationError as exc:
        print(f"refusing to write; unknown series or labels:\n{exc}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print("every generated file is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
