"""Test support: real Kafka and Redis access, bounded polls, tokens."""
