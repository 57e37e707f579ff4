"""Prometheus metrics, one place for every name. The API serves them at /metrics; the worker on
its own port (`GRADEFLOW_WORKER_METRICS_PORT`). Labels are bounded: route templates, not paths."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("gradeflow_http_requests", "HTTP requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "gradeflow_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = Gauge("gradeflow_http_requests_in_flight", "HTTP requests being answered by this process")
REJECTED = Counter("gradeflow_http_rejected", "Requests refused before work: rate limit or overload", ["reason"])
GROUP_ROWS = Histogram(
    "gradeflow_group_commit_rows",
    "Writes per group-commit statement (concurrent requests' single writes sent together)",
    ["kind"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)

JOBS = Counter("gradeflow_jobs", "Worker jobs finished", ["kind", "outcome"])
JOB_SECONDS = Histogram(
    "gradeflow_job_duration_seconds",
    "Time a worker job ran",
    ["kind", "outcome"],
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
QUEUE_DEPTH = Gauge("gradeflow_queue_depth", "Jobs waiting in the arq queue")
REPORTS_WAITING = Gauge("gradeflow_reports_waiting", "Report records queued or running")
WEBHOOKS_DUE = Gauge("gradeflow_webhook_deliveries_due", "Webhook deliveries waiting to be sent")

WEBHOOK_DELIVERIES = Counter("gradeflow_webhook_deliveries", "Webhook delivery attempts", ["outcome"])
EMAILS = Counter("gradeflow_emails", "E-mails handed to the SMTP server or given up", ["outcome"])
