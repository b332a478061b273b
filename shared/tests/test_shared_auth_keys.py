"""EdDSA token keys (issue 15, part A): thumbprint key ids, key sets by kid with a rate-limited JWKS
refetch, the keygen and token commands, and the settings that name the key files."""
from __future__ import annotations

import json
import subprocess
import sys

import jwt
import pytest

from shared.auth import (InvalidToken, KeySet, SigningKey, _b64url_decode, issue_token, keys_from_jwks,
                         thumbprint, verify_token, VerifiedTokens)
from shared.config import ConfigError, EnvReader, PlatformSettings
from shared.testing.fixtures import OLD_HS256_SECRET
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def test_the_key_id_is_the_rfc_7638_thumbprint():
    # RFC 8037, appendix A.3: the thumbprint of its Ed25519 example key
    key = Ed25519PublicKey.from_public_bytes(_b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
    assert thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    signing = SigningKey.generate()
    assert jwt.get_unverified_header(issue_token(signing, organization_id="o", role="admin")) == {
        "alg": "EdDSA", "kid": signing.kid, "typ": "JWT"}
    assert SigningKey.from_pem(signing.pem()).kid == signing.kid


def test_only_eddsa_by_a_known_key_verifies():
    signing, other = SigningKey.generate(), SigningKey.generate()
    keyset = KeySet(keys_from_jwks(signing.jwks()))
    assert verify_token(issue_token(signing, organization_id="o", role="admin", version=2), keyset).version == 2
    with pytest.raises(InvalidToken, match="unknown key"):
        verify_token(issue_token(other, organization_id="o", role="admin"), keyset)
    claims = jwt.decode(issue_token(signing, organization_id="o", role="admin"), options={"verify_signature": False})
    with pytest.raises(InvalidToken, match="platform's key"):
        verify_token(jwt.encode(claims, OLD_HS256_SECRET, algorithm="HS256", headers={"kid": signing.kid}), keyset)
    forged = jwt.encode(claims, other.private_key, algorithm="EdDSA", headers={"kid": signing.kid})
    with pytest.raises(InvalidToken, match="not valid"):
        verify_token(forged, keyset)


def test_a_verified_token_is_remembered_until_it_expires_or_its_key_leaves_the_key_set():
    import time
    signing, other = SigningKey.generate(), SigningKey.generate()
    published, keyset_now, now = {"keys": [signing.public_jwk()]}, [1000.0], [time.time()]
    keyset = KeySet(url="https://intake.test/jwks", fetch=lambda url: published, clock=lambda: keyset_now[0])
    tokens = VerifiedTokens(keyset, clock=lambda: now[0])
    token = issue_token(signing, organization_id="o", role="coordinator", sites=["s1"], ttl_seconds=600)
    first = tokens.verify(token)
    assert first.sites == frozenset({"s1"}) and tokens.verify(token) is first   # checked once, then remembered
    # a forged token is refused every time, whatever was remembered for the real one
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "admin"}, other.private_key, algorithm="EdDSA", headers={"kid": signing.kid})
    for _ in range(2):
        with pytest.raises(InvalidToken, match="not valid"):
            tokens.verify(forged)
    # once its expiry has passed it is not answered from memory (it is verified again, here by the real clock)
    now[0] = claims["exp"]
    again = tokens.verify(token)
    assert again == first and again is not first
    # keys rotated: once the key set no longer holds the key that signed it, it is refused
    published["keys"] = [other.public_jwk()]
    keyset_now[0] += 30   # a token by the new key makes the key set fetch again
    assert tokens.verify(issue_token(other, organization_id="o", role="admin")).role == "admin"
    with pytest.raises(InvalidToken, match="unknown key"):
        tokens.verify(token)


def test_a_jwks_url_is_fetched_again_for_an_unknown_kid_at_most_every_30_seconds():
    first, second = SigningKey.generate(), SigningKey.generate()
    published, fetches, now = {"keys": [first.public_jwk()]}, [], [1000.0]

    def fetch(url):
        fetches.append(url)
        return published

    keyset = KeySet(url="http://intake/.well-known/jwks.json", fetch=fetch, clock=lambda: now[0])
    assert keyset.get(first.kid) is not None and len(fetches) == 1
    assert keyset.get(first.kid) is not None and len(fetches) == 1      # known: no fetch
    published = {"keys": [first.public_jwk(), second.public_jwk()]}     # intake rotated its key
    now[0] += 5
    assert keyset.get(second.kid) is None and len(fetches) == 1       # unknown, but fetched 5 s ago
    now[0] += 25
    assert keyset.get(second.kid) is not None and len(fetches) == 2   # 30 s on: one refetch finds it
    now[0] += 1
    assert keyset.get("made-up-kid") is None and len(fetches) == 2   # made-up kids cannot hammer intake
    now[0] += 30
    assert keyset.get("made-up-kid") is None and len(fetches) == 3
    assert keyset.get(first.kid) is not None and keyset.get(second.kid) is not None


def test_keygen_writes_the_pair_and_token_signs_with_it(tmp_path):
    run = lambda *args, env=None: subprocess.run([sys.executable, "-m", "shared.auth", *args], capture_output=True,
                                                 text=True, env={"PATH": "", **(env or {})})
    made = run("keygen", "--out", str(tmp_path / "keys"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "keys" / "signing_key.pem").stat().st_mode & 0o077 == 0
    assert run("keygen", "--out", str(tmp_path / "keys")).returncode == 1  # never overwritten by accident
    document = json.loads((tmp_path / "keys" / "jwks.json").read_text())
    assert all("d" not in key for key in document["keys"])
    printed = run("token", "--org", "o1", "--role", "member", "--member-id", "m1", "--version", "3",
                  env={"AUTH_SIGNING_KEY_FILE": str(tmp_path / "keys" / "signing_key.pem")})
    assert printed.returncode == 0, printed.stderr
    principal = verify_token(printed.stdout.strip(), KeySet(keys_from_jwks(document)))
    assert (principal.member_id, principal.version, principal.subject) == ("m1", 3, "member:m1")


def test_settings_name_the_key_files_and_refuse_what_is_not_a_key(tmp_path):
    base = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "MONGO_URI": "mongodb://127.0.0.1:27017"}
    (tmp_path / "bad.json").write_text('{"keys": []}')
    for extra, says in (({}, "AUTH_PUBLIC_KEYS_FILE or AUTH_JWKS_URL is required"),
                        ({"AUTH_PUBLIC_KEYS_FILE": str(tmp_path / "none.json")}, "cannot read"),
                        ({"AUTH_PUBLIC_KEYS_FILE": str(tmp_path / "bad.json")}, "holds no Ed25519 key"),
                        ({"AUTH_JWKS_URL": "intake:8000"}, "AUTH_JWKS_URL")):
        env = EnvReader({**base, **extra})
        PlatformSettings.read(env, "matching")
        with pytest.raises(ConfigError, match=says):
            env.done()
    from intake.config import Settings

    with pytest.raises(ConfigError, match="AUTH_SIGNING_KEY_FILE is required"):
        Settings.from_env({**base, "AUTH_JWKS_URL": "http://intake:8000/.well-known/jwks.json"})
