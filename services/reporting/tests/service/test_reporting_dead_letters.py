"""Reporting's dead letters on the real broker: set-up creates its dead-letter topic, and the re-drive command
(``python -m shared.messaging.consumer redrive --service reporting``) publishes them back once."""
import subprocess
import sys
import uuid

from kafka import KafkaConsumer, KafkaProducer

from shared.messaging.kafka import ensure_topics, platform_topics


def test_reporting_dead_letters_are_created_by_setup_and_redriven(kafka_bootstrap, kafka_connection):
    ensure_topics(kafka_connection)  # what deploy/setup does
    assert "recoverynet.reporting.dlq" in platform_topics()
    scratch = f"test.reporting.redrive.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_connection, {scratch: {}})
    marker = uuid.uuid4().hex.encode()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    producer.send("recoverynet.reporting.dlq", key=b"k", value=marker,
                  headers=[("ce_type", b"org.recoverynet.test.v1"), ("x-dlq-original-topic", scratch.encode()),
                           ("x-dlq-reason", b"test")])
    producer.flush()
    producer.close()
    done = subprocess.run([sys.executable, "-m", "shared.messaging.consumer", "redrive", "--service", "reporting",
                           "--bootstrap", kafka_bootstrap], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "recoverynet.reporting" in done.stdout and "re-drove" in done.stdout, done.stdout
    consumer = KafkaConsumer(scratch, bootstrap_servers=kafka_bootstrap.split(","), group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    try:
        values = [record.value for record in consumer]
    finally:
        consumer.close()
    assert values == [marker]  # back on its original topic, once, without the dlq headers
