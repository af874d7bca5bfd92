"""The event contract: envelope, event types, codec. Knows nothing of Kafka or PostgreSQL."""
