"""deploy/kubernetes: every manifest of the base and the production overlay, rendered by our small kustomize
(tests/operations/kustomize.py; compared with ``kubectl kustomize`` when kubectl is installed), validated
against the Kubernetes 1.32 schema (kubernetes-validate, strict: unknown fields fail; its schemas are bundled,
nothing is fetched) and, for the Strimzi and MongoDB operator resources it cannot know, against our own
schemas (crd_schemas.py); then the rules the platform needs of them, checked one by one."""
from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.events import REGISTRY
from shared.messaging.kafka import CONSUMER_SERVICES, consumer_group, dead_letter_topic, platform_topics

from .crd_schemas import SCHEMAS
from .kustomize import render

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.32.0"
OVERLAYS = {"base": KUBERNETES / "base", "production": KUBERNETES / "overlays" / "production"}
CONTACTS = "recoverynet.intake.contacts"
NOTIFICATIONS_DLQ = "recoverynet.notifications.dlq"
# every service with a web process and a worker (the four, and reporting: issue 18)
SERVICES = CONSUMER_SERVICES
WEB_SERVICES = (*SERVICES, "console")


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def rendered(request) -> list[dict]:
    return render(OVERLAYS[request.param])


def of_kind(objects, kind):
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed: our renderer is checked against it where it is")
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_our_renderer_agrees_with_kubectl_kustomize(overlay):
    out = subprocess.run(["kubectl", "kustomize", str(OVERLAYS[overlay])], capture_output=True, text=True, check=True).stdout
    theirs = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out) if o}
    ours = {(o["kind"], o["metadata"]["name"]): o for o in render(OVERLAYS[overlay])}
    assert ours == theirs


def test_every_builtin_object_is_valid_kubernetes(rendered):
    builtin = [obj for obj in rendered if (obj["apiVersion"], obj["kind"]) not in SCHEMAS]
    assert len(builtin) > 30
    problems = []
    for obj in builtin:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {getattr(exc, 'message', exc)}")
    assert not problems, "\n".join(problems)


def test_kubernetes_validate_really_rejects_a_bad_manifest():
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "x", "image": "x", "livenessProbe": {"httpGet": {"path": "/healthz"}}}]}},
                    "replicass": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_every_custom_resource_matches_our_schema_of_it(rendered):
    custom = [obj for obj in rendered if (obj["apiVersion"], obj["kind"]) in SCHEMAS]
    assert {obj["kind"] for obj in custom} == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "MongoDBCommunity"}
    for obj in custom:
        jsonschema.validate(obj, SCHEMAS[(obj["apiVersion"], obj["kind"])])
    with pytest.raises(jsonschema.ValidationError):  # and the schemas do refuse a stray field
        jsonschema.validate({**custom[0], "spec": {**custom[0]["spec"], "replicationFactor": 3}},
                            SCHEMAS[(custom[0]["apiVersion"], custom[0]["kind"])])


def test_each_service_has_a_probed_web_and_an_honestly_probed_worker(rendered):
    deployments = of_kind(rendered, "Deployment")
    assert set(deployments) == {*WEB_SERVICES, *(f"{s}-worker" for s in SERVICES)}
    images = {c["image"] for d in deployments.values() for c in pod_spec(d)["containers"]}
    assert len(images) == 1, "one image for every process"
    for name in WEB_SERVICES:
        (web,) = pod_spec(deployments[name])["containers"]
        assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for service in SERVICES:
        (worker,) = pod_spec(deployments[f"{service}-worker"])["containers"]
        assert worker["command"] == ["python", "-m", f"{service}.worker"]
        assert "ports" not in worker
        assert worker["livenessProbe"]["exec"]["command"] == ["python", "-m", "deploy.healthcheck", "worker", service]
        assert importlib.util.find_spec("deploy.healthcheck")


def test_every_pod_is_non_root_read_only_without_capabilities_and_sized(rendered):
    pods = [obj for obj in rendered if obj["kind"] in ("Deployment", "Job")]
    for obj in pods:
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, obj["metadata"]["name"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), "a writable /tmp on a read-only root"


def test_web_services_have_a_service_a_disruption_budget_and_an_autoscaler(rendered):
    services, pdbs, hpas = of_kind(rendered, "Service"), of_kind(rendered, "PodDisruptionBudget"), of_kind(rendered, "HorizontalPodAutoscaler")
    deployments = of_kind(rendered, "Deployment")
    for name in WEB_SERVICES:
        assert services[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name and hpas[name]["spec"]["minReplicas"] >= 2
        assert "replicas" not in deployments[name]["spec"], "the autoscaler owns the web's replica count"
    for name, deployment in deployments.items():
        assert pdbs[name]["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    paths = {p["path"]: p["backend"]["service"]["name"] for r in of_kind(rendered, "Ingress")["recoverynet"]["spec"]["rules"]
             for p in r["http"]["paths"]}
    assert paths == {f"/{name}(/|$)(.*)": name for name in WEB_SERVICES}


def _env(container):
    return {e["name"]: e for e in container.get("env", [])}


def test_secrets_come_from_secret_objects_and_only_intake_holds_the_signing_key(rendered):
    config = of_kind(rendered, "ConfigMap")["recoverynet-config"]["data"]
    assert not any(word in key for key in config for word in ("SECRET", "PASSWORD", "KEY_FILE_CONTENT"))
    for obj in rendered:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        spec = pod_spec(obj)
        secrets = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        holds_signing_key = "recoverynet-signing-key" in secrets
        # intake's web and worker (its Settings require the key); nothing else
        assert holds_signing_key == (obj["metadata"]["name"] in ("intake", "intake-worker")), obj["metadata"]["name"]
        for container in spec["containers"]:
            env = _env(container)
            for name in ("MONGO_URI", "KAFKA_SASL_PASSWORD", "UNSUBSCRIBE_SECRET", "CONSOLE_SECRET_KEY", "SMTP_PASSWORD",
                         "REPORTING_PSEUDONYM_KEY"):
                if name in env:
                    assert "secretKeyRef" in env[name]["valueFrom"], name
            if obj["metadata"]["name"] in (*SERVICES, *(f"{s}-worker" for s in SERVICES)):
                assert "recoverynet-public-keys" in secrets and config["AUTH_PUBLIC_KEYS_FILE"].startswith("/etc/recoverynet/keys/")
                assert env["PUBLIC_BASE_URL"]["value"].startswith("$(PUBLIC_ORIGIN)/"), "workers too: links in emails"
            if obj["metadata"]["name"] in ("intake", "intake-worker"):
                assert env["AUTH_SIGNING_KEY_FILE"]["value"] == "/etc/recoverynet/signing/signing-key.pem"
    assert not of_kind(rendered, "Secret"), "no Secret object with values is committed"


def test_setup_job_creates_the_indexes_and_leaves_topics_to_strimzi(rendered):
    (container,) = pod_spec(of_kind(rendered, "Job")["recoverynet-setup"])["containers"]
    assert container["command"] == ["python", "-m", "deploy.setup", "--only", "indexes"]


def test_kafka_has_three_brokers_replication_three_and_min_isr_two(rendered):
    (kafka,) = of_kind(rendered, "Kafka").values()
    (pool,) = of_kind(rendered, "KafkaNodePool").values()
    assert pool["spec"]["replicas"] == 3 and set(pool["spec"]["roles"]) == {"broker", "controller"}
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3 and config["transaction.state.log.min.isr"] == 2
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert all(listener["authentication"] for listener in kafka["spec"]["kafka"]["listeners"])


def test_a_kafka_topic_for_every_topic_of_the_code(rendered):
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind(rendered, "KafkaTopic").values()}
    assert set(topics) == set(platform_topics())
    for name, spec in topics.items():
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2
        assert (spec["config"].get("cleanup.policy") == "compact") == (name == CONTACTS)


def _acls(user):
    granted = {}
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl["resource"].get("patternType", "literal") == "literal", "no prefix grants: every name is spelt out"
        granted.setdefault((acl["resource"]["type"], acl["resource"]["name"]), set()).update(acl["operations"])
    return granted


def test_kafka_users_grant_each_service_exactly_what_its_code_uses(rendered):
    users = of_kind(rendered, "KafkaUser")
    assert set(users) == {f"recoverynet-{s}{suffix}" for s in SERVICES for suffix in ("", "-redrive")}
    for service in SERVICES:
        subscriptions = importlib.import_module(f"{service}.subscriptions").SUBSCRIPTIONS
        consumes = {declaration.topic for declaration in subscriptions}
        produces = {d.topic for d in REGISTRY.values() if d.__module__.rsplit(".", 1)[-1] == service}
        group = consumer_group(service)
        expected = {**{("topic", t): {"Read", "Describe"} for t in consumes},
                    **{("topic", t): {"Write", "Describe"} for t in produces},
                    ("topic", dead_letter_topic(group)): {"Write", "Describe"}, ("group", group): {"Read", "Describe"}}
        assert _acls(users[f"recoverynet-{service}"]) == expected, service
        expected_redrive = {**{("topic", t): {"Write", "Describe"} for t in consumes},
                            ("topic", dead_letter_topic(group)): {"Read", "Describe"},
                            ("group", f"{group}.redrive"): {"Read", "Describe"}}
        assert _acls(users[f"recoverynet-{service}-redrive"]) == expected_redrive, service


def test_only_notifications_and_intake_touch_the_contact_topic_and_only_notifications_its_dlq(rendered):
    users = of_kind(rendered, "KafkaUser")
    touching = lambda topic: {name for name, user in users.items() if ("topic", topic) in _acls(user)}  # noqa: E731
    assert touching(CONTACTS) == {"recoverynet-intake", "recoverynet-notifications", "recoverynet-notifications-redrive"}
    assert _acls(users["recoverynet-intake"])[("topic", CONTACTS)] == {"Write", "Describe"}
    assert touching(NOTIFICATIONS_DLQ) == {"recoverynet-notifications", "recoverynet-notifications-redrive"}


def test_mongodb_is_a_three_member_replica_set_with_one_database_per_service(rendered):
    (mongo,) = of_kind(rendered, "MongoDBCommunity").values()
    assert mongo["spec"]["members"] == 3 and mongo["spec"]["type"] == "ReplicaSet"
    users = {u["name"]: u for u in mongo["spec"]["users"]}
    for service in WEB_SERVICES:
        assert users[service]["roles"] == [{"name": "readWrite", "db": f"recoverynet_{service}"}], "its database only"
        assert users[service]["connectionStringSecretName"] == f"recoverynet-mongodb-{service}"
    deployments = of_kind(rendered, "Deployment")
    for name, deployment in deployments.items():
        service = name.removesuffix("-worker")
        (container,) = pod_spec(deployment)["containers"]
        assert _env(container)["MONGO_URI"]["valueFrom"]["secretKeyRef"]["name"] == f"recoverynet-mongodb-{service}"


def test_reporting_runs_a_web_and_a_worker_with_its_pseudonym_key_and_reads_no_contacts(rendered):
    """Issue 18: reporting's web (probed, autoscaled, behind the Ingress at /reporting) and worker, both given
    the pseudonym key from a Secret (the same for every copy); its Kafka user reads exactly the topics of its
    subscriptions, writes only its dead letters, and never touches the contact topic; the console reaches it."""
    deployments = of_kind(rendered, "Deployment")
    for name in ("reporting", "reporting-worker"):
        (container,) = pod_spec(deployments[name])["containers"]
        key = _env(container)["REPORTING_PSEUDONYM_KEY"]["valueFrom"]["secretKeyRef"]
        assert key == {"name": "recoverynet-reporting-keys", "key": "REPORTING_PSEUDONYM_KEY"}
    acls = _acls(of_kind(rendered, "KafkaUser")["recoverynet-reporting"])
    assert ("topic", CONTACTS) not in acls
    assert {name for (kind, name), ops in acls.items() if kind == "topic" and "Read" in ops} == {
        d.topic for d in importlib.import_module("reporting.subscriptions").SUBSCRIPTIONS}
    assert {name for (kind, name), ops in acls.items() if "Write" in ops} == {"recoverynet.reporting.dlq"}
    (console,) = pod_spec(deployments["console"])["containers"]
    assert _env(console)["REPORTING_URL"]["value"] == "http://reporting:8000"
