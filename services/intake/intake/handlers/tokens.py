"""Tokens: intake alone signs them (its Ed25519 key), publishes the public keys (JWKS), and keeps each
person's token version, the ``ver`` claim every token carries. Signing out everywhere (or deactivating
a person) bumps the version: every service then refuses the older tokens (shared.revocations).

For the other use cases: ``current_version(store, subject)`` is the version a token issued now must
carry; ``revoke_all(uow, subject, organization_id)`` signs a person out everywhere (staff deactivation
calls it too); ``sign(...)`` issues a token with the current version.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.auth import Principal, SigningKey, issue_token, jwks_of, load_jwks_file
from shared.config import ConfigError, PlatformSettings
from shared.events.intake import TokensRevoked
from shared.revocations import RevocationStore
from shared.unit_of_work import UnitOfWork

from intake.repository import Store


@dataclass(frozen=True)
class TokenKeys:
    """The key intake signs with and the key set it publishes (that key and the rotated-out ones)."""

    signing_key: SigningKey
    jwks: dict
    audience: str

    @classmethod
    def load(cls, platform: PlatformSettings) -> "TokenKeys":
        if not platform.auth_signing_key_file:
            raise ConfigError("AUTH_SIGNING_KEY_FILE is required by intake (the Ed25519 key tokens are signed with)")
        key = SigningKey.load(platform.auth_signing_key_file)
        published = {key.kid: key.public_key}
        if platform.auth_previous_keys_file:
            for kid, public_key in load_jwks_file(platform.auth_previous_keys_file).items():
                published.setdefault(kid, public_key)
        return cls(key, jwks_of(published), platform.auth_audience)


def current_version(store: Store, subject: str) -> int:
    """The token version of ``subject`` (a token's sub): tokens issued now carry it."""
    return store.token_version(subject)


def sign(store: Store, keys: TokenKeys, *, subject: str, organization_id: str | None, role: str,
         ttl_seconds: int, sites: list[str] | None = None, leader_id: str | None = None,
         member_id: str | None = None) -> str:
    """A token for ``subject`` carrying its current version."""
    return issue_token(keys.signing_key, organization_id=organization_id, role=role, sites=sites,
                       leader_id=leader_id, member_id=member_id, subject=subject, ttl_seconds=ttl_seconds,
                       audience=keys.audience, version=current_version(store, subject))


def revoke_all(uow: UnitOfWork, subject: str, organization_id: str | None) -> int:
    """Every token of ``subject`` issued until now stops working: the version goes up by one, intake's
    own revocation read model learns it in this transaction, the other services by TokensRevoked.
    Returns the new version (the lowest one accepted from now on)."""
    version = Store.of(uow).bump_token_version(subject, organization_id)
    RevocationStore.of(uow).raise_min_version(subject, organization_id or "", version)
    uow.emit(TokensRevoked, {"organization_id": organization_id or "", "subject": subject, "min_version": version})
    return version


def sign_out_everywhere(uow: UnitOfWork, principal: Principal) -> dict:
    """The caller's every token (this one included) stops working on every service within a minute."""
    version = revoke_all(uow, principal.subject, principal.organization_id)
    if principal.organization_id:
        Store.of(uow).audit(principal, "sign_out_everywhere", "token", principal.subject, principal.organization_id)
    return {"subject": principal.subject, "min_version": version}
