"""Test support: the real embedded servers, a TCP proxy to cut the broker, and polling helpers.
No mocks of Kafka or MongoDB (DESIGN.md)."""
from shared.testing.polling import eventually  # noqa: F401
