"""Intake's token keys (issue 15, part A): it signs with AUTH_SIGNING_KEY_FILE and publishes that key
with the rotated-out ones of AUTH_PREVIOUS_KEYS_FILE, so tokens of the old key verify until they expire."""
from dataclasses import replace

import pytest

from shared.auth import KeySet, issue_token, keys_from_jwks, verify_token, write_key_pair
from shared.config import ConfigError, PlatformSettings

from intake.config import Settings
from intake.handlers.tokens import TokenKeys

BASE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "MONGO_URI": "mongodb://127.0.0.1:27017"}


def test_a_rotated_out_key_stays_published_until_dropped(tmp_path):
    old, new = write_key_pair(tmp_path / "old"), write_key_pair(tmp_path / "new")
    settings = Settings.from_env({**BASE, "AUTH_PUBLIC_KEYS_FILE": str(tmp_path / "new" / "jwks.json"),
                                  "AUTH_SIGNING_KEY_FILE": str(tmp_path / "new" / "signing_key.pem"),
                                  "AUTH_PREVIOUS_KEYS_FILE": str(tmp_path / "old" / "jwks.json")})
    keys = TokenKeys.load(settings.platform)
    assert keys.signing_key.kid == new.kid
    assert [key["kid"] for key in keys.jwks["keys"]] == [new.kid, old.kid]
    published = KeySet(keys_from_jwks(keys.jwks))
    for signer in (old, new):
        assert verify_token(issue_token(signer, organization_id="o", role="admin"), published).role == "admin"
    alone = TokenKeys.load(replace(settings.platform, auth_previous_keys_file=None))
    assert [key["kid"] for key in alone.jwks["keys"]] == [new.kid]


def test_intake_refuses_to_start_without_a_readable_private_key(tmp_path):
    write_key_pair(tmp_path)
    env = {**BASE, "AUTH_PUBLIC_KEYS_FILE": str(tmp_path / "jwks.json")}
    with pytest.raises(ConfigError, match="AUTH_SIGNING_KEY_FILE"):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match="not a PEM private key"):
        Settings.from_env({**env, "AUTH_SIGNING_KEY_FILE": str(tmp_path / "jwks.json")})
    with pytest.raises(ConfigError, match="AUTH_SIGNING_KEY_FILE is required by intake"):
        TokenKeys.load(PlatformSettings(service_name="intake", kafka_bootstrap_servers="k:1", mongo_uri="mongodb://m",
                                        mongo_database="d", auth_audience="a", public_base_url="u", log_level="INFO",
                                        mongo_timeout_ms=100))
