"""Metrics for Prometheus and log records that carry the job."""
