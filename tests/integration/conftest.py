"""Integration tests: each service's HTTP API and worker against the real Kafka and Redis.

The fixtures they use (``settings``, ``apps``, ``workers``, ``auth``) live in tests/conftest.py,
shared with the contract and fuzz suites.
"""
