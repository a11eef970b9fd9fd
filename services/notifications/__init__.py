"""notifications: each member's inbox of what they should hear about, unread counts, preferences."""
