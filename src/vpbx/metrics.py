"""Prometheus metrics, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("vpbx_http_requests_total", "HTTP requests answered", ["method", "status"],
                        registry=REGISTRY)
HTTP_LATENCY = Histogram("vpbx_http_request_seconds", "HTTP request latency", ["method"], registry=REGISTRY,
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

# The CRM notifier (vpbx.notify).
NOTIFY_ENQUEUED = Counter("vpbx_crm_notifications_enqueued_total", "Notifications written to the outbox",
                          ["command"], registry=REGISTRY)
NOTIFY_ATTEMPTS = Counter("vpbx_crm_delivery_attempts_total", "Delivery attempts by outcome",
                          ["command", "outcome"], registry=REGISTRY)
NOTIFY_LATENCY = Histogram("vpbx_crm_delivery_seconds", "Delivery attempt latency", ["command"], registry=REGISTRY,
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
NOTIFY_FINISHED = Counter("vpbx_crm_notifications_total", "Notifications that reached a final state",
                          ["command", "state"], registry=REGISTRY)
NOTIFY_FORGOTTEN = Counter("vpbx_crm_notifications_forgotten_total",
                           "Settled notifications removed from the delivery log past its retention", registry=REGISTRY)
NOTIFY_SWITCHED_OFF = Counter("vpbx_crm_integrations_switched_off_total",
                              "Integrations switched off after failing for days", registry=REGISTRY)
RATE_LIMITED = Counter("vpbx_http_rate_limited_total", "Requests refused with 429 (failed logins, key budgets)",
                       registry=REGISTRY)
CONTACT_LOOKUPS = Counter("vpbx_crm_contact_lookups_total", "contact lookups by outcome", ["outcome"],
                          registry=REGISTRY)
CONTACT_LATENCY = Histogram("vpbx_crm_contact_seconds", "contact lookup latency", registry=REGISTRY,
                            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5))

# The call engine's write-behind (vpbx.engine.core) and crash recovery (vpbx.engine.recovery).
ENGINE_WRITE_FAILURES = Counter("vpbx_engine_write_failures_total",
                                "Engine write batches that failed and are tried again", registry=REGISTRY)
ENGINE_CALLS_RECOVERED = Counter("vpbx_engine_calls_recovered_total",
                                 "Calls a crash left live, ended by the recovery at start-up", ["status"],
                                 registry=REGISTRY)
