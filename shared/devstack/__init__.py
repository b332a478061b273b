"""The local development stack, for ``./deploy/up`` and the test fixtures (never the production image):
the embedded Kafka-protocol broker and MongoDB-protocol server, a TCP proxy to cut the broker
(``servers``), and the SMTP mail catcher (``mailcatcher``). Needs the ``dev`` extra (pyproject.toml)."""
