"""Names shared by the agent and the processes it starts; importing this costs nothing.

The pytest plugin runs inside every validation subprocess and reads these without pulling
in OpenTelemetry or prometheus-client.
"""

from __future__ import annotations

CORRELATION_ATTRIBUTE = "hephaestus.correlation_id"  # span attribute and baggage key
SPAN_FILE_ENV = "HEPHAESTUS_SPAN_FILE"  # where a tool subprocess records its spans
