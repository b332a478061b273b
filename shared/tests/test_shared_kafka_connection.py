"""The Kafka settings reach real clients. A connection read from the environment, as a service reads it, makes
the admin client, producer and consumer that carry a record through the broker, and each client holds the
settings' configuration.

Only PLAINTEXT runs here: the embedded broker (Tansu) has no SASL and no TLS listener, so SASL and SSL are
checked as configuration (shared/tests/test_shared_config.py: the keyword arguments, each one kafka-python's
clients take, and the errors), never against a broker that pretends to authenticate. docs/operating.md says
what that leaves untested (SCRAM against a real Strimzi listener)."""
from __future__ import annotations

import subprocess
import sys
import uuid

from shared.config import EnvReader
from shared.messaging.kafka import close_producer, ensure_topics, make_consumer, make_producer
from shared.testing import eventually


def test_settings_read_from_the_environment_make_clients_that_reach_the_broker(kafka_bootstrap):
    env = EnvReader({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"})
    kafka = env.kafka()
    env.done()
    topic = f"test.connection.{uuid.uuid4().hex[:8]}"
    assert ensure_topics(kafka, {topic: {}}, partitions=1) == [topic]
    producer = make_producer(kafka)
    consumer = make_consumer(kafka, f"test-connection-{uuid.uuid4().hex[:8]}", [topic])
    try:
        for client in (producer, consumer):
            assert client.config["bootstrap_servers"] == kafka_bootstrap.split(",")
            assert client.config["security_protocol"] == "PLAINTEXT"
            assert client.config["sasl_mechanism"] is None and client.config["ssl_cafile"] is None
        marker = uuid.uuid4().hex.encode()
        producer.send(topic, key=b"k", value=marker).get(timeout=30)
        received: list[bytes] = []

        def got_it():
            for records in consumer.poll(timeout_ms=500).values():
                received.extend(record.value for record in records)
            return marker in received

        eventually(got_it, timeout=60, interval=0, message="the record did not come back through the broker")
    finally:
        consumer.close()
        close_producer(producer)


def test_the_redrive_command_reads_the_kafka_settings_and_refuses_incomplete_ones():
    """It fails before connecting, naming what is missing (no broker is asked to authenticate)."""
    done = subprocess.run([sys.executable, "-m", "shared.messaging.consumer", "redrive", "--service", "matching",
                           "--bootstrap", "127.0.0.1:9"],
                          env={"PATH": "/usr/bin:/bin", "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                               "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "KAFKA_SASL_USERNAME is required" in done.stderr and "KAFKA_SASL_PASSWORD is required" in done.stderr
