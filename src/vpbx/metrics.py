"""Prometheus metrics, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("vpbx_http_requests_total", "HTTP requests answered", ["method", "status"],
                        registry=REGISTRY)
HTTP_LATENCY = Histogram("vpbx_http_request_seconds", "HTTP request latency", ["method"], registry=REGISTRY,
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
