"""Platform operator accounts (no organization): made once at set-up, then the operator signs in like
everyone (POST /v1/sign-in with this email, then POST /v1/sign-in/token).

    MONGO_URI=... python -m intake.operators create --email ops@example.org [--name Ops]
    MONGO_URI=... python -m intake.operators deactivate --email ops@example.org
    MONGO_URI=... python -m intake.operators activate --email ops@example.org
"""
from __future__ import annotations

import argparse
import json
import sys

from shared.config import ConfigError
from shared.errors import DomainError
from shared.mongo import connect, utcnow
from shared.repository import Repository

from intake.config import database_settings
from intake.handlers import staff
from intake.repository import SOURCE, Store, ensure_indexes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intake.operators", description="Platform operator accounts.")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="make an operator account that signs in with this email")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default=None)
    for name in ("deactivate", "activate"):
        sub.add_parser(name, help=f"{name} an operator (deactivating also revokes their tokens)").add_argument(
            "--email", required=True)
    args = parser.parse_args(argv)
    try:
        uri, database = database_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client = connect(uri)
    try:
        db = client[database]
        ensure_indexes(db)
        repo = Repository(client, db, source=SOURCE, store=Store)
        if args.command == "create":
            doc = repo.transaction(lambda uow: staff.create_operator(uow, args.email, args.name, utcnow()))
        else:
            status = "inactive" if args.command == "deactivate" else "active"
            doc = repo.transaction(lambda uow: staff.set_operator_status(uow, args.email, status))
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(json.dumps({"id": doc["_id"], "email": doc["email"], "status": doc["status"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
