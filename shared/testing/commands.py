"""What a client sends to the database, for tests that count reads and writes: pymongo's command monitoring,
against the real server (``connect(uri, event_listeners=[sent])``)."""
from __future__ import annotations

from pymongo import monitoring

WRITES = ("insert", "update", "delete")


class SentCommands(monitoring.CommandListener):
    """The commands of the names given (``"find"``, ``*WRITES`` ...) a client sends, in order, as
    (name, command) pairs; ``collections``: the collection each names."""

    def __init__(self, *names: str):
        self.names = frozenset(names)
        self.sent: list[tuple[str, dict]] = []

    @property
    def collections(self) -> list[str]:
        return [command[name] for name, command in self.sent]

    def started(self, event):
        if event.command_name in self.names:
            self.sent.append((event.command_name, event.command))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass
