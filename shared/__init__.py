"""Rapport's common package: settings, auth, HTTP plumbing, events and the Kafka/Redis bus.

Every service builds on this package; services never import each other.
"""
