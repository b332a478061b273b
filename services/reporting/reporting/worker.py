"""The reporting worker process: consumes SUBSCRIPTIONS (it publishes nothing: its relay only asks at each heartbeat).

    python -m reporting.worker
"""
from __future__ import annotations

from shared.worker import Worker, serve

from reporting.config import Settings
from reporting.repository import ensure_indexes
from reporting.subscriptions import subscriptions


def build_worker(settings: Settings, group_id: str | None = None) -> Worker:
    return Worker(settings.platform, subscriptions(settings), group_id=group_id, web_writes_events=False)


def main() -> None:
    serve(Settings.from_env(), build_worker, ensure_indexes)


if __name__ == "__main__":
    main()
