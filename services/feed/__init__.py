"""The eligibility feed for mail tools: outbox -> compacted Kafka topic and signed webhooks,
plus the HTTP mailing-list and suppression exports (docs/mail-tools.md)."""
