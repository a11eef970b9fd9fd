"""The message bus: Kafka producer, Redis outbox and relay, consumer runner."""
