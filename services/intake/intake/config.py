"""Settings.from_env(): the only reader of the environment for the intake service."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Mapping

from shared.config import EnvReader, PlatformSettings

SERVICE = "intake"


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    # How often the worker announces consents whose expiry has passed (MemberConsentChanged, granted false).
    consent_expiry_check_seconds: float = 60.0
    # Rows one bulk-import upload may hold (each row is its own transaction, ~12 ms on the embedded database).
    import_max_rows: int = 2000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = EnvReader(os.environ if environ is None else environ)
        platform = PlatformSettings.read(env, SERVICE)
        # Intake alone signs tokens: the Ed25519 private key, and (key rotation) the public keys of the
        # keys it signed with before, still published at /.well-known/jwks.json until their tokens expire.
        platform = replace(platform, auth_signing_key_file=env.key_file("AUTH_SIGNING_KEY_FILE", "private", required=True),
                           auth_previous_keys_file=env.key_file("AUTH_PREVIOUS_KEYS_FILE", "public"))
        settings = cls(platform=platform,
                       consent_expiry_check_seconds=env.float("CONSENT_EXPIRY_CHECK_SECONDS", 60.0),
                       import_max_rows=env.int("IMPORT_MAX_ROWS", 2000, minimum=1))
        env.done()  # raises ConfigError naming every missing or malformed setting
        return settings
