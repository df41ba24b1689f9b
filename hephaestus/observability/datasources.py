"""Grafana's provisioned data sources: Prometheus (exemplars to Jaeger) and Jaeger.

The uids are fixed, so dashboards, exemplar links and trace-to-metrics links survive a
fresh Grafana.
"""

from __future__ import annotations

PROMETHEUS_UID = "prometheus"
JAEGER_UID = "jaeger"
SCRAPE_INTERVAL = "15s"
"""The scrape interval of the agent's job; Grafana derives ``$__rate_interval`` from it."""

# Queries offered from a span in Jaeger: ${__tags} becomes job="<service.name>", and the
# agent's service.name is its scrape job's name.
TRACE_QUERIES = (
    ("Cycles by outcome", "sum by (outcome) (rate(hephaestus_cycles_total{${__tags}}[5m]))"),
    (
        "Cycle duration p95",
        "histogram_quantile(0.95, sum by (le) "
        "(rate(hephaestus_cycle_duration_seconds_bucket{${__tags}}[5m])))",
    ),
    (
        "Failed model calls by model",
        "sum by (gen_ai_request_model) (rate("
        'gen_ai_client_operation_duration_seconds_count{${__tags}, error_type!=""}[5m]))',
    ),
)


def provisioning() -> dict[str, object]:
    """The ``provisioning/datasources`` document."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": PROMETHEUS_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": "http://prometheus:9090",
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "httpMethod": "POST",
                    "timeInterval": SCRAPE_INTERVAL,
                    "exemplarTraceIdDestinations": [
                        {
                            "name": "trace_id",
                            "datasourceUid": JAEGER_UID,
                            "urlDisplayLabel": "Open the cycle's trace in Jaeger",
                        }
                    ],
                },
            },
            {
                "name": "Jaeger",
                "uid": JAEGER_UID,
                "type": "jaeger",
                "access": "proxy",
                "url": "http://jaeger:16686",
                "editable": False,
                "jsonData": {
                    "tracesToMetrics": {
                        "datasourceUid": PROMETHEUS_UID,
                        "spanStartTimeShift": "-5m",
                        "spanEndTimeShift": "5m",
                        "tags": [{"key": "service.name", "value": "job"}],
                        "queries": [{"name": n, "query": q} for n, q in TRACE_QUERIES],
                    },
                    "nodeGraph": {"enabled": True},
                },
            },
        ],
    }
