"""Observability: logs, metrics, health and readiness, systemd notify."""
