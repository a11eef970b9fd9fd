"""The messaging service: conversations between connections."""
