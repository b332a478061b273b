"""One-shot set-up: create every topic (event topics, the compacted contact topic, dead-letter topics)
and every service's collections and indexes; with AUTH_KEYS_DIR (docker-compose), the token key pair
once: AUTH_KEYS_DIR/signing_key.pem (intake's only) and AUTH_PUBLIC_KEYS_DIR/jwks.json (everyone's).
Safe to run again (an existing key pair is kept); waits for the servers to answer.

    KAFKA_BOOTSTRAP_SERVERS=... MONGO_URI=... python -m deploy.setup [--only topics|indexes|keys]
    (MONGO_URI_<SERVICE>, e.g. MONGO_URI_MATCHING: a service whose database is on a server of its own)

The broker's security settings (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CAFILE) are read as a
service reads them.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from shared.auth import SigningKey, write_key_pair
from shared.config import EnvReader, KafkaConnection
from shared.messaging.kafka import SERVICES, ensure_topics
from shared.mongo import connect

log = logging.getLogger("recoverynet.setup")


def _retry(what: str, action, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - servers may still be starting
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} failed for {timeout:.0f}s: {exc}") from exc
            log.info("%s not ready yet (%s); retrying", what, type(exc).__name__)
            time.sleep(2)


def create_topics(kafka: KafkaConnection, timeout: float = 120) -> list[str]:
    return _retry("creating topics", lambda: ensure_topics(kafka), timeout)


def create_indexes(uri_of, database_of=lambda service: f"recoverynet_{service}", timeout: float = 120) -> None:
    """Each service's indexes in its database, on the server ``uri_of(service)`` names (one server for all in
    docker-compose; one each in the local runner)."""
    for service in (*SERVICES, "reporting"):  # reporting (issue 18) publishes nothing, so no topic of its own
        client = connect(uri_of(service))
        try:
            repository = importlib.import_module(f"{service}.repository")
            _retry(f"indexes of {service}", lambda: repository.ensure_indexes(client[database_of(service)]), timeout)
        finally:
            client.close()


def ensure_key_pair(private_dir: Path, public_dir: Path) -> str:
    """Make the token key pair unless there is one; publish its public key. -> the key id."""
    private = private_dir / "signing_key.pem"
    if private.exists():
        key = SigningKey.load(private)
    else:
        key = write_key_pair(private_dir)
        (private_dir / "jwks.json").unlink(missing_ok=True)  # the public copy lives in public_dir
    public_dir.mkdir(parents=True, exist_ok=True)
    (public_dir / "jwks.json").write_text(json.dumps(key.jwks(), indent=2) + "\n", encoding="utf-8")
    return key.kid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.setup", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("topics", "indexes", "keys"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s setup %(message)s")
    env = EnvReader()
    kafka = env.kafka() if args.only in (None, "topics") else None
    mongo_uris = env.mongo_uris((*SERVICES, "reporting")) if args.only in (None, "indexes") else None
    prefix = env.str("MONGO_DATABASE_PREFIX", "recoverynet_")
    keys_dir = env.str("AUTH_KEYS_DIR", None) if args.only in (None, "keys") else None
    public_dir = env.str("AUTH_PUBLIC_KEYS_DIR", keys_dir)
    env.done()
    if keys_dir:
        log.info("token key pair ready (kid %s)", ensure_key_pair(Path(keys_dir), Path(public_dir)))
    if kafka:
        created = create_topics(kafka)
        log.info("topics ready (%d created)", len(created))
    if mongo_uris:
        create_indexes(mongo_uris.get, lambda service: f"{prefix}{service}")
        log.info("indexes ready for %s", ", ".join(SERVICES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
