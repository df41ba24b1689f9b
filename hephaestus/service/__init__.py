"""The long-running service: continuous cycles, HTTP endpoints, graceful shutdown."""
