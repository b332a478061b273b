from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from shared.config import SASL_MECHANISMS, ConfigError, EnvReader, KafkaConnection, PlatformSettings


def test_missing_and_malformed_settings_are_all_named_at_once():
    env = EnvReader({"KAFKA_BOOTSTRAP_SERVERS": "localhost", "MONGO_URI": "postgres://x", "MONGO_TIMEOUT_MS": "abc"})
    PlatformSettings.read(env, "intake")
    with pytest.raises(ConfigError) as info:
        env.done()
    text = str(info.value)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "MONGO_URI", "AUTH_PUBLIC_KEYS_FILE", "MONGO_TIMEOUT_MS"):
        assert name in text


def test_defaults_fill_optional_settings():
    env = EnvReader({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "MONGO_URI": "mongodb://127.0.0.1:27017",
                     "AUTH_JWKS_URL": "http://intake:8000/.well-known/jwks.json"})
    settings = PlatformSettings.read(env, "matching")
    env.done()
    assert settings.mongo_database == "recoverynet_matching" and settings.auth_audience == "recoverynet"


# -- Kafka: the broker's address and how to authenticate to it (EnvReader.kafka, settings.kafka) ------------
BROKER = {"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092"}
SCRAM = {**BROKER, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
         "KAFKA_SASL_USERNAME": "recoverynet-matching", "KAFKA_SASL_PASSWORD": "s3cret-pass"}


def kafka_problems(environ: dict) -> list[str]:
    env = EnvReader(environ)
    env.kafka()
    return env.problems


def test_kafka_is_plaintext_unless_told_and_gives_kafka_python_only_the_addresses():
    env = EnvReader({**BROKER, "MONGO_URI": "mongodb://m", "AUTH_JWKS_URL": "http://intake/.well-known/jwks.json"})
    settings = PlatformSettings.read(env, "matching")
    env.done()
    assert settings.kafka == KafkaConnection("k1:9092,k2:9092")
    assert settings.kafka.client_config() == {"bootstrap_servers": ["k1:9092", "k2:9092"]}
    assert kafka_problems({**BROKER, "KAFKA_SECURITY_PROTOCOL": "plaintext"}) == []


def test_sasl_settings_become_kafka_python_keyword_arguments(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = EnvReader({**SCRAM, "KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SSL_CAFILE": str(ca),
                     "MONGO_URI": "mongodb://m", "AUTH_JWKS_URL": "http://intake/.well-known/jwks.json"})
    settings = PlatformSettings.read(env, "matching")
    env.done()
    assert settings.kafka.client_config() == {
        "bootstrap_servers": ["k1:9092", "k2:9092"], "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "recoverynet-matching",
        "sasl_plain_password": "s3cret-pass", "ssl_cafile": str(ca)}
    # kafka-python takes each of these by this name, in every client the platform makes (a typo here would
    # otherwise be found by the first broker that refuses us)
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(settings.kafka.client_config()) <= set(client.DEFAULT_CONFIG), client
    # settings are printed (logs, tracebacks); the password never is
    assert "s3cret-pass" not in repr(settings) and "s3cret-pass" not in repr(settings.kafka)


@pytest.mark.parametrize("mechanism", SASL_MECHANISMS)
def test_every_accepted_mechanism_is_one_kafka_python_has(mechanism):
    from kafka.net.sasl import get_sasl_mechanism

    env = EnvReader({**SCRAM, "KAFKA_SASL_MECHANISM": mechanism.lower()})
    assert env.kafka().security["sasl_mechanism"] == mechanism and not env.problems
    assert get_sasl_mechanism(mechanism)


def test_ssl_without_sasl_needs_no_credentials_and_uses_the_system_cas_without_a_cafile():
    env = EnvReader({**BROKER, "KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert env.kafka().security == {"security_protocol": "SSL"} and not env.problems


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_a_sasl_protocol_without_mechanism_user_or_password_names_each(protocol):
    problems = kafka_problems({**BROKER, "KAFKA_SECURITY_PROTOCOL": protocol})
    assert [p.split(" ")[0] for p in problems] == ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"]
    assert all(f"is required with KAFKA_SECURITY_PROTOCOL={protocol}" in p for p in problems)


def test_malformed_kafka_settings_are_named_with_what_is_expected():
    problems = kafka_problems({**SCRAM, "KAFKA_SECURITY_PROTOCOL": "TLS"})
    assert problems == ["KAFKA_SECURITY_PROTOCOL='TLS' is malformed: expected one of PLAINTEXT, SASL_SSL, "
                        "SASL_PLAINTEXT, SSL (not a value kafka-python knows)"]
    problems = kafka_problems({**SCRAM, "KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SSL_CAFILE": "/no/such/ca.pem"})
    assert len(problems) == 2
    assert problems[0].startswith("KAFKA_SASL_MECHANISM='GSSAPI' is malformed: expected one of PLAIN, SCRAM-SHA-256")
    assert problems[1].startswith("KAFKA_SSL_CAFILE='/no/such/ca.pem' is malformed") and "cannot read it" in problems[1]


def test_credentials_or_a_ca_file_the_protocol_would_ignore_are_refused(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    problems = kafka_problems({**SCRAM, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SSL_CAFILE": str(ca)})
    assert [p.split(" ")[0] for p in problems] == ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
                                                   "KAFKA_SSL_CAFILE"]
    assert "does not authenticate" in problems[0] and "does not use TLS" in problems[3]
    assert kafka_problems({**SCRAM, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SSL_CAFILE": str(ca)}) == [
        "KAFKA_SSL_CAFILE is set but KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT does not use TLS: use SSL or SASL_SSL, "
        "or unset it"]


def test_a_service_refuses_to_start_naming_the_kafka_settings_with_the_others():
    from matching.config import Settings

    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BROKER, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"})
    text = str(info.value)
    for name in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "MONGO_URI", "AUTH_PUBLIC_KEYS_FILE"):
        assert name in text


def test_the_kubernetes_deployments_settings_are_valid_sasl_settings():
    """What deploy/kubernetes gives a worker (the ConfigMap and its Deployment's env, the Secret's password
    stood in for) reads as SCRAM-SHA-512 as that service's KafkaUser."""
    import yaml

    root = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "base"
    config = next(d for d in yaml.safe_load_all((root / "config.yaml").read_text()) if d and d["kind"] == "ConfigMap")
    worker = next(d for d in yaml.safe_load_all((root / "matching.yaml").read_text())
                  if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "matching-worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    environ = {**config["data"], **{e["name"]: e.get("value", "from-a-secret") for e in container["env"]}}
    env = EnvReader(environ)
    kafka = env.kafka()
    assert not env.problems
    assert kafka.security == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                              "sasl_plain_username": "recoverynet-matching", "sasl_plain_password": "from-a-secret"}
