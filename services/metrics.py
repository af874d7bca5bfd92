"""Prometheus metrics of every service, defined once; each process exposes its own."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter(
    "consent_ledger_events_accepted_total",
    "Events appended to the ledger after the broker acknowledged them.",
    ["type", "channel"],
)
EVENTS_REJECTED = Counter(
    "consent_ledger_events_rejected_total",
    "Submitted items refused, by event type (or 'unknown') and reason.",
    ["type", "reason", "channel"],
)
APPEND_BATCH_RECORDS = Histogram(
    "consent_ledger_append_batch_records",
    "Records per Kafka transaction written by intake.",
    buckets=(1, 5, 10, 50, 100, 500, 1000, 5000),
)
APPEND_SECONDS = Histogram(
    "consent_ledger_append_seconds", "Duration of one intake Kafka transaction."
)
PROJECTION_LAG = Gauge(
    "consent_ledger_projection_lag",
    "Ledger records not yet projected, per partition.",
    ["projection", "partition"],
)
PROJECTOR_BATCH_RECORDS = Histogram(
    "consent_ledger_projector_batch_records",
    "Records per consumed batch.",
    buckets=(1, 10, 100, 500, 1000, 2000, 5000),
)
PROJECTOR_BATCH_SECONDS = Histogram(
    "consent_ledger_projector_batch_seconds", "Duration of one projected batch, fold and write."
)
PROJECTOR_RETRIES = Counter(
    "consent_ledger_projector_retries_total", "Batches retried after a transient failure."
)
DEAD_LETTERS = Counter(
    "consent_ledger_dead_letters_total", "Records sent to the dead-letter topic.", ["origin"]
)
