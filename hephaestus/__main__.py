"""Allow ``python -m hephaestus``."""

from hephaestus.cli import main

raise SystemExit(main())
