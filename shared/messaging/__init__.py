"""How events travel: the CloudEvents envelope (``envelope``), Kafka clients and topics (``kafka``), the
transactional outbox and its relay (``outbox``), and the consumer runner with inbox, retries, dead letters
and the re-drive command (``consumer``: ``python -m shared.messaging.consumer redrive --service NAME``)."""
