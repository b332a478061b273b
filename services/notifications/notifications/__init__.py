"""The notifications service: The right message, on the right channel, at the right time, once."""
