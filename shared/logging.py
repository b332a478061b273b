"""JSON logs, one object per line, with the request id and trace id when there is one.

Never log request bodies or event data: they hold health records and contact details."""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Callable

from shared.tracing import current_traceparent, trace_id

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := request_id.get():
            entry["request_id"] = rid
        if tid := trace_id(current_traceparent.get()):
            entry["trace_id"] = tid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class QuietRepeats(logging.Filter):
    """kafka-python logs every failed reconnect, thousands of lines a second while a broker is away. Let
    the same message (logger and template) of a ``kafka`` logger through once per ``every`` seconds;
    the next one that passes says how many were dropped (``repeats_suppressed``)."""

    def __init__(self, prefixes: tuple[str, ...] = ("kafka",), every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.prefixes, self.every, self.clock = prefixes, every, clock
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # -> (when it last passed, dropped since)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key, now = (record.name, str(record.msg)), self.clock()
        with self._lock:
            passed, dropped = self._last.get(key, (None, 0))
            if passed is not None and now - passed < self.every:
                self._last[key] = (passed, dropped + 1)
                return False
            if len(self._last) > 1000:  # bounded: forget old messages rather than grow
                self._last.clear()
            self._last[key] = (now, 0)
        if dropped:
            record.repeats_suppressed = dropped
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(QuietRepeats())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("pymongo").setLevel(logging.WARNING)
