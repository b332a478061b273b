"""Logs: kafka-python's reconnect storm during a broker outage is thinned, everything else passes."""
import io
import json
import logging

from shared.logging import JsonFormatter, QuietRepeats


def _logger(name: str, clock) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(QuietRepeats(every=10.0, clock=clock))
    logger = logging.getLogger(name)
    logger.handlers[:], logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger, out


def test_the_same_kafka_error_passes_once_per_interval_and_says_how_many_were_dropped():
    now = [0.0]
    kafka, out = _logger("kafka.net.manager", lambda: now[0])
    for _ in range(3000):
        kafka.error("Connection failed: %s", "KafkaConnectionError: 111 ECONNREFUSED")
    kafka.error("Metadata refresh: failed %s", "KafkaConnectionError")  # another message passes
    now[0] = 10.5
    kafka.error("Connection failed: %s", "KafkaConnectionError: 111 ECONNREFUSED")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["message"][:17] for line in lines] == ["Connection failed", "Metadata refresh:", "Connection failed"]
    assert "repeats_suppressed" not in lines[0] and lines[2]["repeats_suppressed"] == 2999


def test_our_own_loggers_are_never_thinned():
    ours, out = _logger("shared.messaging.consumer", lambda: 0.0)
    for _ in range(5):
        ours.warning("dead-lettered an event")
    assert len(out.getvalue().splitlines()) == 5
