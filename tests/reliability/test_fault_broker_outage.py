"""Fault: the broker is unreachable for OUTAGE_SECONDS in the middle of a burst of registrations.

The services reach the embedded broker only through a TCP proxy (its address is the advertised one);
the test cuts the proxy, so every producer, consumer and group coordinator connection drops and new ones
are refused, while the broker keeps its in-memory data. Guarantee: every request is answered (201, or
503 problem+json with Retry-After; never a 500), and once the broker is back every member is matched
exactly once and gets exactly one proposal email.
"""
import time

import pytest

OUTAGE_SECONDS = 30
BEFORE, DURING, AFTER = 8, 8, 8


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fault_broker_unreachable_mid_burst_loses_and_doubles_nothing(fault_platform, fault_org):
    org = fault_org("broker outage")
    proxy = fault_platform.platform.broker.proxy
    # the pipeline is warm: a first member is matched and told before the burst
    org.register(0)
    org.wait_matched(timeout=90)

    answers = org.register_many(range(1, 1 + BEFORE))
    proxy.cut()
    cut_at = time.monotonic()
    try:
        # registrations keep coming while the broker is away, spread over the outage
        for i in range(1 + BEFORE, 1 + BEFORE + DURING):
            answers[i] = org.register(i)
            time.sleep(max(0.0, min(OUTAGE_SECONDS / DURING - 0.2, cut_at + OUTAGE_SECONDS - time.monotonic())))
        assert fault_platform.client("intake").get("/readyz").status_code == 200, \
            "intake's readiness does not depend on the broker"
        time.sleep(max(0.0, cut_at + OUTAGE_SECONDS - time.monotonic()))  # hold the outage open
    finally:
        proxy.restore()
    answers.update(org.register_many(range(1 + BEFORE + DURING, 1 + BEFORE + DURING + AFTER)))

    # every request was answered: accepted, or 503 problem+json with Retry-After (then retried); never a 500
    for index, tries in answers.items():
        for status, headers, body in tries:
            assert status in (201, 503), f"member {index}: {status} {body}"
            if status == 503:
                assert headers.get("Retry-After"), headers
                assert headers.get("Content-Type", "").startswith("application/problem+json"), headers
        assert tries[-1][0] == 201, f"member {index} was never accepted: {tries}"
    assert len(org.members) == 1 + BEFORE + DURING + AFTER

    # ... and after the broker returned, every member is matched and notified exactly once
    matches = org.wait_matched(timeout=150)
    mail = org.wait_emails(timeout=150)
    org.assert_each_member_once(matches=matches, mail=mail)
