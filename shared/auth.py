"""Bearer tokens: a JWT bound to one organization and a role (and, for coordinators, sites).

Roles:
  operator     platform operator: creates organizations (no organization of its own)
  admin        organization admin: everything in their organization
  coordinator  site coordinator: only the sites in ``sites``
  leader       peer leader: only their own matches, sessions and members (``leader_id``)
  member       a person in recovery: only their own record, match, sessions and messages (``member_id``)
  service      internal service account of an organization

Tokens are signed with EdDSA (Ed25519) by intake alone, which holds the private key; the header's
``kid`` is the RFC 7638 thumbprint of the public key. Every service verifies with public keys only (a
JWKS file and/or intake's ``/.well-known/jwks.json``), chosen by ``kid``; any other algorithm (the old
HS256 shared secret among them) is refused.

Every token carries ``ver``, the person's token version: intake bumps it to sign a person out
everywhere, and the services refuse tokens older than the version they were told about.

For operators and tests:
  python -m shared.auth keygen --out DIR      writes DIR/signing_key.pem (private: intake only) and
                                              DIR/jwks.json (the public key set every service verifies with)
  python -m shared.auth token --org ORG --role admin [--sites S1,S2] [--leader-id L] [--member-id M]
                              [--subject SUB] [--version N] [--ttl 3600]
(``token`` reads AUTH_SIGNING_KEY_FILE and AUTH_AUDIENCE from the environment).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ISSUER = "recoverynet"
ROLES = ("operator", "admin", "coordinator", "leader", "member", "service")
ALGORITHM = "EdDSA"
# An unknown kid makes a key set with a JWKS URL fetch it again, at most this often.
JWKS_REFETCH_SECONDS = 30.0

log = logging.getLogger(__name__)


class InvalidToken(Exception):
    pass


class KeyFileError(ValueError):
    """A key file or key set cannot be read (the message says which and why)."""


# --- keys ------------------------------------------------------------------------------------------

def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638: SHA-256 of the required members of the JWK (crv, kty, x), sorted, no whitespace."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public(public_key))}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return _b64url(hashlib.sha256(canonical).digest())


def public_jwk(public_key: Ed25519PublicKey) -> dict:
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(_raw_public(public_key)), "kid": thumbprint(public_key),
            "use": "sig", "alg": ALGORITHM}


@dataclass(frozen=True)
class SigningKey:
    """The private key intake signs tokens with, and its key id (the public key's thumbprint)."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def kid(self) -> str:
        return thumbprint(self.public_key)

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> "SigningKey":
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(f"not a PEM private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError("not an Ed25519 private key")
        return cls(key)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SigningKey":
        try:
            return cls.from_pem(Path(path).read_bytes())
        except OSError as exc:
            raise KeyFileError(f"cannot read {path}: {exc.strerror}") from exc

    def pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def public_jwk(self) -> dict:
        return public_jwk(self.public_key)

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk()]}


def keys_from_jwks(document: Mapping) -> dict[str, Ed25519PublicKey]:
    """{kid: public key} of a JWKS document's Ed25519 keys (other key types are skipped)."""
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list):
        raise KeyFileError('a JWKS document is {"keys": [...]}')
    found: dict[str, Ed25519PublicKey] = {}
    for jwk in keys:
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        try:
            public_key = Ed25519PublicKey.from_public_bytes(_b64url_decode(str(jwk.get("x", ""))))
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"a key's x is not an Ed25519 public key ({exc})") from exc
        kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) and jwk.get("kid") else thumbprint(public_key)
        found[kid] = public_key
    return found


def load_jwks_file(path: str | os.PathLike) -> dict[str, Ed25519PublicKey]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeyFileError(f"{path} is not JSON ({exc})") from exc
    return keys_from_jwks(document)


def jwks_of(keys: Mapping[str, Ed25519PublicKey]) -> dict:
    return {"keys": [dict(public_jwk(key), kid=kid) for kid, key in keys.items()]}


class KeySet:
    """The public keys tokens are verified with, by ``kid``: fixed keys (a JWKS file) and/or the keys
    published at a JWKS URL (intake's), fetched when first needed and again when a token names a kid
    not yet known (at most once per ``refetch_seconds``, so unknown kids cannot hammer intake)."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey] | None = None, *, url: str | None = None,
                 refetch_seconds: float = JWKS_REFETCH_SECONDS, fetch: Callable[[str], dict] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._fixed = dict(keys or {})
        self._fetched: dict[str, Ed25519PublicKey] = {}
        self.url, self.refetch_seconds, self._clock = url, refetch_seconds, clock
        self._fetch = fetch or _fetch_jwks
        self._last_fetch: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, public_keys_file: str | None, jwks_url: str | None) -> "KeySet":
        return cls(load_jwks_file(public_keys_file) if public_keys_file else {}, url=jwks_url)

    def get(self, kid: str) -> Ed25519PublicKey | None:
        key = self._fixed.get(kid) or self._fetched.get(kid)
        if key is not None or not self.url:
            return key
        with self._lock:
            key = self._fetched.get(kid)
            now = self._clock()
            if key is None and (self._last_fetch is None or now - self._last_fetch >= self.refetch_seconds):
                self._last_fetch = now
                try:
                    self._fetched = keys_from_jwks(self._fetch(self.url))
                except Exception as exc:  # noqa: BLE001 - intake unreachable: keep the keys we have
                    log.warning("cannot fetch the token keys from %s: %s", self.url, exc)
                key = self._fetched.get(kid)
            return key

    def kids(self) -> list[str]:
        return sorted({*self._fixed, *self._fetched})


def _fetch_jwks(url: str) -> dict:
    import requests

    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


# --- tokens ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    organization_id: str | None
    sites: frozenset[str] = field(default_factory=frozenset)
    leader_id: str | None = None
    member_id: str | None = None
    version: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role in ("admin", "service")

    def can_access_site(self, site_id: str | None) -> bool:
        """Admins and service accounts see every site of their organization; coordinators and
        leaders only the sites their token names."""
        if self.is_admin:
            return True
        return site_id is not None and site_id in self.sites

    def site_filter(self) -> list[str] | None:
        """None means all sites of the organization; otherwise the sites this caller may see."""
        return None if self.is_admin else sorted(self.sites)


def issue_token(signing_key: SigningKey, *, organization_id: str | None, role: str, sites: list[str] | None = None,
                leader_id: str | None = None, member_id: str | None = None, subject: str | None = None,
                ttl_seconds: int = 3600, audience: str = "recoverynet", version: int = 0) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role != "operator" and not organization_id:
        raise ValueError("every role but operator is bound to an organization")
    if role == "leader" and not leader_id:
        raise ValueError("a leader token needs the leader id")
    if role == "member" and not member_id:
        raise ValueError("a member token needs the member id")
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": audience, "iat": now, "exp": now + ttl_seconds, "jti": str(uuid.uuid4()),
        "sub": subject or f"{role}:{leader_id or member_id or uuid.uuid4().hex[:12]}",
        "role": role, "org": organization_id, "sites": sorted(sites or []), "ver": version,
    }
    if leader_id:
        claims["leader_id"] = leader_id
    if member_id:
        claims["member_id"] = member_id
    return jwt.encode(claims, signing_key.private_key, algorithm=ALGORITHM, headers={"kid": signing_key.kid})


def verify_token(token: str, keyset: KeySet, audience: str = "recoverynet") -> Principal:
    """The caller a token names, if an EdDSA signature by one of ``keyset``'s keys (by ``kid``) and its
    claims hold; otherwise InvalidToken. Revocation (``ver``) is the web layer's check."""
    return _verified(token, keyset, audience)[0]


class VerifiedTokens:
    """``verify_token`` remembered per token for this process until the token expires: a signature is checked
    once, not on every request (a console page sends the same token to several services; 0.23 ms a check).
    A remembered token is answered again only before its ``exp`` and while the key that signed it is still
    in the key set; revocation is not remembered here (the web layer asks ``Revocations`` every request)."""

    def __init__(self, keyset: KeySet, audience: str = "recoverynet", *, clock: Callable[[], float] = time.time,
                 most: int = 10_000):
        self.keyset, self.audience, self._clock, self._most = keyset, audience, clock, most
        self._known: dict[str, tuple[Principal, float, str, Ed25519PublicKey]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        hit = self._known.get(token)
        if hit is not None:
            principal, expires, kid, key = hit
            if self._clock() < expires and self.keyset.get(kid) is key:
                return principal
            self._known.pop(token, None)
        principal, expires, kid, key = _verified(token, self.keyset, self.audience)
        with self._lock:
            if len(self._known) >= self._most:   # simpler than an LRU; a token is verified again when next seen
                self._known.clear()
            self._known[token] = (principal, expires, kid, key)
        return principal


def _verified(token: str, keyset: KeySet, audience: str) -> tuple[Principal, float, str, Ed25519PublicKey]:
    """verify_token's answer with the token's expiry, its kid and the key that verified it."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("the token is not valid") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("the token is not signed with the platform's key")
    kid = header.get("kid")
    key = keyset.get(kid) if isinstance(kid, str) and kid else None
    if key is None:
        raise InvalidToken("the token is signed with an unknown key")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience, issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "aud", "iss"]})
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the token has expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidToken("the token is for another audience") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("the token is not valid") from exc
    role = claims.get("role")
    if role not in ROLES:
        raise InvalidToken("the token has no valid role")
    org = claims.get("org")
    if role != "operator" and not org:
        raise InvalidToken("the token is not bound to an organization")
    sites = claims.get("sites") or []
    if not isinstance(sites, list) or not all(isinstance(s, str) for s in sites):
        raise InvalidToken("the token's sites are malformed")
    if role == "leader" and not claims.get("leader_id"):
        raise InvalidToken("a leader token needs the leader id")
    if role == "member" and not claims.get("member_id"):
        raise InvalidToken("a member token needs the member id")
    version = claims.get("ver", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidToken("the token's version is malformed")
    principal = Principal(subject=claims["sub"], role=role, organization_id=org, sites=frozenset(sites),
                          leader_id=claims.get("leader_id"), member_id=claims.get("member_id"), version=version)
    return principal, float(claims["exp"]), kid, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.auth", description="Token keys and bearer tokens.")
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="write a new Ed25519 key pair: signing_key.pem and jwks.json")
    keygen.add_argument("--out", required=True, help="folder to write signing_key.pem and jwks.json into")
    keygen.add_argument("--force", action="store_true", help="replace a key pair already there")
    token = sub.add_parser("token", help="print a token for an organization and role (AUTH_SIGNING_KEY_FILE)")
    token.add_argument("--org", help="organization id (not for --role operator)")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--sites", default="", help="comma-separated site ids (coordinators, leaders)")
    token.add_argument("--leader-id", help="the leader's id (role leader)")
    token.add_argument("--member-id", help="the member's id (role member)")
    token.add_argument("--subject", help="the token's sub (default: role:id)")
    token.add_argument("--version", type=int, default=0, help="the person's token version (default 0)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        return _keygen(Path(args.out), args.force)
    path = os.environ.get("AUTH_SIGNING_KEY_FILE")
    if not path:
        print("AUTH_SIGNING_KEY_FILE is required (the PEM of intake's Ed25519 signing key)", file=sys.stderr)
        return 2
    try:
        print(issue_token(SigningKey.load(path), organization_id=args.org, role=args.role,
                          sites=[s for s in args.sites.split(",") if s], leader_id=args.leader_id,
                          member_id=args.member_id, subject=args.subject, version=args.version,
                          ttl_seconds=args.ttl, audience=os.environ.get("AUTH_AUDIENCE", "recoverynet")))
    except (ValueError, KeyFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def write_key_pair(folder: Path, key: SigningKey | None = None) -> SigningKey:
    """``folder``/signing_key.pem (mode 600) and ``folder``/jwks.json (its public key)."""
    key = key or SigningKey.generate()
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / "signing_key.pem"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.pem())
    (folder / "jwks.json").write_text(json.dumps(key.jwks(), indent=2) + "\n", encoding="utf-8")
    return key


def _keygen(folder: Path, force: bool) -> int:
    if (folder / "signing_key.pem").exists() and not force:
        print(f"{folder / 'signing_key.pem'} exists; --force replaces it (tokens it signed stop verifying "
              "unless its public key stays in AUTH_PREVIOUS_KEYS_FILE)", file=sys.stderr)
        return 1
    key = write_key_pair(folder)
    print(f"wrote {folder / 'signing_key.pem'} (private: intake's AUTH_SIGNING_KEY_FILE) and "
          f"{folder / 'jwks.json'} (public: every service's AUTH_PUBLIC_KEYS_FILE); kid {key.kid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
