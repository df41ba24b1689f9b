"""The one error ``serve`` gives when it cannot listen where it was told to."""

from __future__ import annotations


class ListenError(OSError):
    """The HTTP endpoints cannot bind ``host:port`` (in use, no such address, no permission)."""

    @classmethod
    def wrap(cls, host: str, port: int, exc: OSError) -> ListenError:
        """The error for a failed bind of ``host:port``, saying what to change."""
        why = exc.strerror or str(exc)
        return cls(
            f"cannot listen on {host}:{port}: {why}; choose another --port "
            f"(service.port) or a local address for --host (service.host)"
        )
