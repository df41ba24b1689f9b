"""The long-running service: continuous cycles, HTTP endpoints, graceful shutdown.

:func:`serve_forever` runs ``hephaestus serve``; :func:`run_cycles` is the one cycle loop
that ``run`` and ``serve`` share; :class:`GracefulShutdown` turns SIGTERM/SIGINT into a
clean stop; :func:`fetch_status` reads a running service for ``hephaestus status``. Names
load on first use: the HTTP stack (Starlette, uvicorn) is only imported when it is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hephaestus._exports import lazy_exports

if TYPE_CHECKING:
    from hephaestus.service.client import EXIT_UNREACHABLE, ServiceUnreachable, fetch_status
    from hephaestus.service.cycles import CycleRequest, run_cycles
    from hephaestus.service.loop import Service, serve_forever
    from hephaestus.service.server import ListenError
    from hephaestus.service.shutdown import GracefulShutdown

__all__ = [
    "EXIT_UNREACHABLE",
    "CycleRequest",
    "GracefulShutdown",
    "ListenError",
    "Service",
    "ServiceUnreachable",
    "fetch_status",
    "run_cycles",
    "serve_forever",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "EXIT_UNREACHABLE": "client",
        "ServiceUnreachable": "client",
        "fetch_status": "client",
        "CycleRequest": "cycles",
        "run_cycles": "cycles",
        "Service": "loop",
        "serve_forever": "loop",
        "ListenError": "server",
        "GracefulShutdown": "shutdown",
    },
)
