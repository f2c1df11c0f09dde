"""The admin HTTP listener: health, readiness, metrics, JSON APIs and the UI."""
