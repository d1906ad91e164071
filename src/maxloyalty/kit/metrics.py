"""Prometheus metrics of the HTTP layer and the job worker."""

from prometheus_client import Counter, Histogram

http_requests = Counter(
    "maxloyalty_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
http_latency = Histogram(
    "maxloyalty_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
jobs_processed = Counter(
    "maxloyalty_jobs_total", "Background jobs processed", ["entrypoint", "outcome"]
)
