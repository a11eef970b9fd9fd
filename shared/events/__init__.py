"""Domain events: the CloudEvents envelope, the catalogue of types, encode/decode."""
from shared.events.envelope import Event, PoisonEvent, UnknownEventType, decode, encode, new_event

__all__ = ["Event", "PoisonEvent", "UnknownEventType", "decode", "encode", "new_event"]
