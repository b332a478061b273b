"""Kafka clients configured one way for the whole platform, and topic set-up.

kafka-python uses the ``crc32c`` package for record checksums when it is installed (it is pinned),
instead of its pure-Python fallback.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

from shared.config import KafkaConnection
from shared.events import RESTRICTED_TOPICS, all_topics

log = logging.getLogger(__name__)

# The four core services, in this order: deploy/local.py and deploy/demo.py derive web ports from the
# position in this tuple (base + index), so a service is never inserted here.
SERVICES = ("intake", "matching", "scheduling", "notifications")
# Every service that runs a consumer group (hence a dead-letter topic and a re-drive): the core four and
# reporting (issue 18), which consumes but publishes nothing and has its own port (base + 5).
CONSUMER_SERVICES = (*SERVICES, "reporting")
DEFAULT_PARTITIONS = 3
# Group membership: about 3 s to join with these (DESIGN.md); kafka-python's default takes ~23 s.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 2000
# How long a fetch waits at the broker for new records. The embedded broker (Tansu) does not answer a waiting
# fetch when a record arrives, so a record is seen when the wait ends: with kafka-python's default (500 ms)
# every consumer hop waited ~120 ms at the median (bench/README.md, issue 20). 100 ms: ~25 ms, for about
# 1% of a core per idle consumer. On Kafka a waiting fetch is answered at once; this only bounds idle fetches.
FETCH_MAX_WAIT_MS = 100
# After this long without a record, a service's consumer waits QUIET_FETCH_MAX_WAIT_MS instead (FetchPacing):
# an idle platform's five consumers asked the broker 50 times a second, about a fifth of a core between them
# and the broker (bench/README.md, "Idle consumers"). The first record after a quiet spell waits up to 300 ms
# more at each hop; once records flow, the wait is FETCH_MAX_WAIT_MS again.
QUIET_FETCH_MAX_WAIT_MS = 300
QUIET_AFTER_SECONDS = 2.0


class FetchPacing:
    """A consumer's fetch wait, set by what its polls return: FETCH_MAX_WAIT_MS while records come, and
    QUIET_FETCH_MAX_WAIT_MS once none has come for QUIET_AFTER_SECONDS. Call ``polled(n)`` after each poll.

    kafka-python reads the wait from its fetcher's config each time it builds a fetch request (3.0.12,
    ``Fetcher._create_fetch_requests``), so changing it there takes effect at the next fetch; the consumer's
    own ``config`` is only what it was made with."""

    def __init__(self, consumer: KafkaConsumer, *, busy_ms: int = FETCH_MAX_WAIT_MS,
                 quiet_ms: int = QUIET_FETCH_MAX_WAIT_MS, quiet_after_seconds: float = QUIET_AFTER_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self._fetcher_config = consumer._fetcher.config  # noqa: SLF001 - see the docstring
        self.busy_ms, self.quiet_ms, self.quiet_after, self.clock = busy_ms, quiet_ms, quiet_after_seconds, clock
        self._last_record = clock()

    @property
    def wait_ms(self) -> int:
        return self._fetcher_config["fetch_max_wait_ms"]

    def polled(self, records: int) -> None:
        now = self.clock()
        if records:
            self._last_record = now
            self._fetcher_config["fetch_max_wait_ms"] = self.busy_ms
        elif now - self._last_record >= self.quiet_after:
            self._fetcher_config["fetch_max_wait_ms"] = self.quiet_ms


def consumer_group(service: str) -> str:
    return f"recoverynet.{service}"


def dead_letter_topic(group: str) -> str:
    """One dead-letter topic per consumer group."""
    return f"{group}.dlq"


def make_producer(kafka: KafkaConnection, **overrides) -> KafkaProducer:
    config = dict(
        **kafka.client_config(),
        enable_idempotence=True,  # no duplicates from producer retries; keeps per-partition order
        acks="all",
        linger_ms=5,
        retries=2**31 - 1,
        request_timeout_ms=10000,
        max_block_ms=10000,
        client_id="recoverynet-producer",
    )
    config.update(overrides)
    return KafkaProducer(**config)


def close_producer(producer: KafkaProducer, timeout: float = 5.0) -> None:
    """Close ``producer``, waiting up to ``timeout`` seconds for what it buffered, then dropping the rest.

    kafka-python's ``close`` flushes first and, when records are still buffered after ``timeout`` (the
    broker is away), raises before it stops the producer's network thread, which then reconnects for
    ever: a leaked thread per producer dropped during an outage. Stop that thread ourselves (no public
    call does it without the flush), after which ``close`` completes; the dropped records' futures fail.
    """
    try:
        producer.close(timeout=timeout)
    except KafkaTimeoutError:
        producer._sender.force_close()  # noqa: SLF001 - see the docstring
        producer._sender.join(max(timeout, 1.0))  # noqa: SLF001 - it stops within milliseconds
        producer.close(timeout=0)


class _WhenAssigned(ConsumerRebalanceListener):
    """Calls ``on_assigned(partitions)`` the moment the group gives this consumer partitions, inside the
    poll that joined (which may go on waiting for records for seconds after)."""

    def __init__(self, on_assigned: Callable[[set], None]):
        self.on_assigned = on_assigned

    def on_partitions_revoked(self, revoked) -> None:
        pass

    def on_partitions_assigned(self, assigned) -> None:
        self.on_assigned(set(assigned))


def make_consumer(kafka: KafkaConnection, group_id: str, topics: list[str], *,
                  on_assigned: Callable[[set], None] | None = None, **overrides) -> KafkaConsumer:
    config = dict(
        **kafka.client_config(),
        group_id=group_id,
        enable_auto_commit=False,  # offsets are committed only after the effect is stored
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_poll_records=200,
        max_poll_interval_ms=300000,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        client_id=f"{group_id}-consumer",
    )
    config.update(overrides)
    consumer = KafkaConsumer(**config)
    consumer.subscribe(topics, listener=_WhenAssigned(on_assigned) if on_assigned else None)
    return consumer


def group_rejoin_pending(consumer: KafkaConsumer) -> bool:
    """Whether the consumer must (re)join its group before it gets records: nothing assigned yet, or the
    group coordinator knows a rebalance is due.

    kafka-python has no public call for the second half (a rebalance listener hears of it only once a
    poll has begun the join, too late to lengthen that poll), so this reads its private coordinator
    (kafka-python==3.0.12, pinned): the one place that does. ``shared/tests/test_shared_kafka_internals.py``
    fails loudly if an upgrade changes it; without it this still answers from the assignment alone."""
    coordinator = getattr(consumer, "_coordinator", None)
    need_rejoin = getattr(coordinator, "need_rejoin", None)
    return not consumer.assignment() or bool(need_rejoin and need_rejoin())


def platform_topics() -> dict[str, dict[str, str]]:
    """Every topic the platform uses, with its configs: event topics, then dead-letter topics."""
    topics: dict[str, dict[str, str]] = {}
    for topic in sorted(all_topics()):
        topics[topic] = {"cleanup.policy": "compact"} if topic in RESTRICTED_TOPICS else {}
    for service in CONSUMER_SERVICES:
        topics[dead_letter_topic(consumer_group(service))] = {}
    return topics


def ensure_topics(kafka: KafkaConnection, topics: dict[str, dict[str, str]] | None = None,
                  partitions: int = DEFAULT_PARTITIONS, replication_factor: int = 1) -> list[str]:
    """Create missing topics; returns the names created. Safe to run again."""
    topics = platform_topics() if topics is None else topics
    admin = KafkaAdminClient(**kafka.client_config(), client_id="recoverynet-setup")
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, partitions, replication_factor, topic_configs=configs)
            for name, configs in topics.items()
            if name not in existing
        ]
        created = []
        for new_topic in wanted:
            try:
                admin.create_topics([new_topic])
                created.append(new_topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
