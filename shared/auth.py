"""Bearer tokens: a JWT bound to one organization and a role (and, for coordinators, sites).

Roles:
  operator     platform operator: creates organizations (no organization of its own)
  admin        organization admin: everything in their organization
  coordinator  site coordinator: only the sites in ``sites``
  leader       peer leader: only their own matches, sessions and members (``leader_id``)
  member       a person in recovery: only their own record, match, sessions and messages (``member_id``)
  service      internal service account of an organization

Every token carries ``ver``, the person's token version: intake bumps it to sign a person out
everywhere, and the services refuse tokens older than the version they were told about.

Print a token for operators and tests:
  python -m shared.auth token --org ORG --role admin [--sites S1,S2] [--leader-id L] [--ttl 3600]
(reads AUTH_SECRET and AUTH_AUDIENCE from the environment).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from dataclasses import dataclass, field

import jwt

ISSUER = "recoverynet"
ROLES = ("operator", "admin", "coordinator", "leader", "member", "service")
ALGORITHM = "HS256"


class InvalidToken(Exception):
    pass


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


def issue_token(secret: str, *, organization_id: str | None, role: str, sites: list[str] | None = None,
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
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str, audience: str = "recoverynet") -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=audience, issuer=ISSUER,
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
    return Principal(subject=claims["sub"], role=role, organization_id=org, sites=frozenset(sites),
                     leader_id=claims.get("leader_id"), member_id=claims.get("member_id"), version=version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.auth", description="Print an API bearer token.")
    sub = parser.add_subparsers(dest="command", required=True)
    token = sub.add_parser("token", help="print a token for an organization and role")
    token.add_argument("--org", help="organization id (not for --role operator)")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--sites", default="", help="comma-separated site ids (coordinators, leaders)")
    token.add_argument("--leader-id", help="the leader's id (role leader)")
    token.add_argument("--member-id", help="the member's id (role member)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    args = parser.parse_args(argv)
    secret = os.environ.get("AUTH_SECRET")
    if not secret:
        print("AUTH_SECRET is required (the secret the services verify tokens with)", file=sys.stderr)
        return 2
    try:
        print(issue_token(secret, organization_id=args.org, role=args.role,
                          sites=[s for s in args.sites.split(",") if s], leader_id=args.leader_id,
                          member_id=args.member_id, ttl_seconds=args.ttl, audience=os.environ.get("AUTH_AUDIENCE", "recoverynet")))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
