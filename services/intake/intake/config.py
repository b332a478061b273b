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
    # Sign-in (README, "Signing in"): the console's address for the link in the message, how long a code
    # lives, the rate limits of POST /v1/sign-in (per address and per client address, per window) and of
    # POST /v1/sign-in/token (per client address), and how long the tokens it hands out live.
    console_public_url: str = "http://127.0.0.1:8005"
    signin_code_ttl_seconds: int = 900
    invitation_code_ttl_seconds: int = 72 * 3600
    signin_window_seconds: int = 900
    signin_per_address_limit: int = 5
    signin_per_client_limit: int = 20
    signin_token_per_client_limit: int = 60
    staff_token_ttl_seconds: int = 8 * 3600
    people_token_ttl_seconds: int = 12 * 3600

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
                       import_max_rows=env.int("IMPORT_MAX_ROWS", 2000, minimum=1),
                       console_public_url=env.str("CONSOLE_PUBLIC_URL", "http://127.0.0.1:8005").rstrip("/"),
                       signin_code_ttl_seconds=env.int("SIGNIN_CODE_TTL_SECONDS", 900, minimum=60),
                       invitation_code_ttl_seconds=env.int("INVITATION_CODE_TTL_SECONDS", 72 * 3600, minimum=60),
                       signin_window_seconds=env.int("SIGNIN_WINDOW_SECONDS", 900, minimum=1),
                       signin_per_address_limit=env.int("SIGNIN_PER_ADDRESS_LIMIT", 5, minimum=1),
                       signin_per_client_limit=env.int("SIGNIN_PER_CLIENT_LIMIT", 20, minimum=1),
                       signin_token_per_client_limit=env.int("SIGNIN_TOKEN_PER_CLIENT_LIMIT", 60, minimum=1),
                       staff_token_ttl_seconds=env.int("STAFF_TOKEN_TTL_SECONDS", 8 * 3600, minimum=60),
                       people_token_ttl_seconds=env.int("PEOPLE_TOKEN_TTL_SECONDS", 12 * 3600, minimum=60))
        env.done()  # raises ConfigError naming every missing or malformed setting
        return settings


def database_settings(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(MONGO_URI, MONGO_DATABASE) alone, for the operator command (python -m intake.operators)."""
    env = EnvReader(os.environ if environ is None else environ)
    uri, database = env.mongo_uri(), env.str("MONGO_DATABASE", f"recoverynet_{SERVICE}")
    env.done()
    return uri, database
