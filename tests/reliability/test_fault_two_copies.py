"""Scale-out: two copies of every worker and of every web service run at once (second copies started with
the same command and environment, web copies on their own ports). Guarantee: the same counts as with
one: every member registered through either intake copy is matched once, accepted through either
matching copy, and gets exactly one email of each kind (the workers share one consumer group per
service; one relay per service publishes, under a lease; the delivery job claims each delivery once).
"""
import pytest
import requests

from deploy.platform_under_test import ApiClient
from shared.devstack.servers import free_port
from shared.testing import eventually

SERVICES = ("intake", "matching", "scheduling", "notifications")
MEMBERS = 12


@pytest.fixture
def second_copies(fault_platform):
    """Second copies of every worker and web process; their ports; stopped afterwards."""
    started, ports = [], {}
    for service in SERVICES:
        fault_platform.spawn_copy(f"{service}-worker", f"{service}-worker-2")
        started.append(f"{service}-worker-2")
        ports[service] = free_port()
        fault_platform.spawn_copy(f"{service}-web", f"{service}-web-2", port=ports[service])
        started.append(f"{service}-web-2")

    def ready(port):
        try:
            return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False
    for port in ports.values():
        eventually(lambda: ready(port), timeout=90)
    yield ports
    platform = fault_platform.platform
    for name in started:
        process = platform.process(name)
        process.terminate()
    for name in started:
        platform.process(name).wait(30)
    platform.processes = [(n, p) for n, p in platform.processes if n not in started]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fault_two_copies_of_every_process_same_counts_as_one(fault_platform, fault_org, second_copies):
    org = fault_org("two copies")
    intake_copies = [org.intake, ApiClient(f"http://127.0.0.1:{second_copies['intake']}", org.admin_token)]

    # registrations alternate between the two intake copies
    def register(index):
        org.intake = intake_copies[index % 2]
        return org.register(index)
    answers = [register(i) for i in range(MEMBERS)]
    assert all(a[-1][0] == 201 for a in answers), answers
    for process in ("intake-worker-2", "matching-worker-2", "scheduling-worker-2", "notifications-worker-2"):
        assert fault_platform.process(process).poll() is None, f"{process} stopped"

    matches = org.wait_matched(timeout=120)
    assert all(n == 1 for n in matches.values()), matches
    # leaders accept through either matching copy
    for i, match in enumerate(org.matches()):
        port = second_copies["matching"] if i % 2 else fault_platform.platform.ports.web("matching")
        leader = ApiClient(f"http://127.0.0.1:{port}",
                           fault_platform.token(org.id, "leader", leader_id=match["leader_id"]))
        leader.post(f"/v1/matches/{match['id']}/accept").expect(200)
    # scheduling (either copy) suggests times for every match
    for i, match in enumerate(org.matches()):
        port = second_copies["scheduling"] if i % 2 else fault_platform.platform.ports.web("scheduling")
        client = ApiClient(f"http://127.0.0.1:{port}", org.admin_token)
        eventually(lambda: client.get(f"/v1/matches/{match['id']}/suggestions").status_code == 200, timeout=60)

    mail = org.wait_emails(per_member=2, timeout=150)
    org.assert_each_member_once(matches=org.wait_matched(timeout=10), mail=mail, per_member=2, status="active")
