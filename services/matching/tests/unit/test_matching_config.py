"""Matching's settings come from the environment, with defaults for everything but the platform part."""
import pytest

from shared.config import ConfigError

from matching.config import Settings

BASE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "MONGO_URI": "mongodb://127.0.0.1:27017",
        "AUTH_JWKS_URL": "http://intake:8000/.well-known/jwks.json"}


def test_defaults_and_overrides():
    settings = Settings.from_env(BASE)
    assert settings.expiry_interval_seconds == 30 and settings.batch_poll_seconds == 2
    assert settings.platform.mongo_database == "recoverynet_matching"
    tuned = Settings.from_env({**BASE, "MATCHING_EXPIRY_INTERVAL_SECONDS": "5"})
    assert tuned.expiry_interval_seconds == 5


def test_a_malformed_setting_is_named():
    with pytest.raises(ConfigError, match="MATCHING_BATCH_POLL_SECONDS"):
        Settings.from_env({**BASE, "MATCHING_BATCH_POLL_SECONDS": "soon"})
