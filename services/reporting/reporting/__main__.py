"""``python -m reporting rebuild``: empty reporting's database and replay the topics from the beginning."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reporting", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("rebuild", help="empty the database's derived collections and replay every topic from offset 0")
    parser.parse_args(argv)
    from shared.logging import configure_logging

    from reporting.config import Settings
    from reporting.handlers.rebuild import rebuild

    settings = Settings.from_env()
    configure_logging(settings.platform.service_name, settings.platform.log_level)
    result = rebuild(settings)
    print(f"rebuilt from {result['events']} events in {result['seconds']:.1f} s (group {result['group_id']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
