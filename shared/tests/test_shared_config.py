import pytest

from shared.config import ConfigError, EnvReader, PlatformSettings


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
