"""Reporting's place in the platform's plumbing: its dead-letter topic is created by set-up and can be re-driven,
without moving any port (deploy/local.py derives ports from SERVICES' order), and it hears sign-out-everywhere."""
from shared.events.intake import TokensRevoked
from shared.messaging.kafka import CONSUMER_SERVICES, SERVICES, consumer_group, dead_letter_topic, platform_topics
from shared.revocations import on_tokens_revoked

from reporting.subscriptions import SUBSCRIPTIONS


def test_reporting_has_a_dead_letter_topic_and_the_core_ports_do_not_move():
    assert dead_letter_topic(consumer_group("reporting")) == "recoverynet.reporting.dlq"
    assert "recoverynet.reporting.dlq" in platform_topics()
    assert SERVICES == ("intake", "matching", "scheduling", "notifications") and CONSUMER_SERVICES[-1] == "reporting"
    from deploy.local import Ports
    ports = Ports(base=9001)
    assert [ports.web(s) for s in (*SERVICES, "console", "reporting")] == [9001, 9002, 9003, 9004, 9005, 9006]


def test_reporting_refuses_revoked_tokens_through_the_shared_read_model():
    assert SUBSCRIPTIONS[TokensRevoked] is on_tokens_revoked
