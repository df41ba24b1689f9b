"""Names shared by the agent and the processes it starts; importing this costs nothing.

The pytest plugin runs inside every validation subprocess and reads these without pulling
in OpenTelemetry or prometheus-client.
"""

from __future__ import annotations

CORRELATION_ATTRIBUTE = "hephaestus.correlation_id"  # span attribute and baggage key
SPAN_FILE_ENV = "HEPHAESTUS_SPAN_FILE"  # where a tool subprocess records its spans
TEST_SPANS_ENV = "HEPHAESTUS_TEST_SPANS"  # "all", or (default) only failed tests get a span
