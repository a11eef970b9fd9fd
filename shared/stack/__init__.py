"""The local stack: Kafka, Redis and the application processes, run by ``rapport up/down/status``.

Nothing here is imported by the services; it only starts them.
"""
