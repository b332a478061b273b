"""The local mail catcher: a real SMTP server that keeps every message it receives as a .eml file in a
folder and lists them over HTTP, so someone trying the platform (and the tests) can see the emails.

    python -m shared.devstack.mailcatcher --smtp-port 8025 --http-port 8026 --dir var/mail

HTTP:  GET /messages[?to=ADDRESS]  -> JSON list, oldest first: id, from, to, subject, date (the Date
                                      header, else when received), received_at, text, html, list_unsubscribe
       GET /messages/<id>           -> the raw .eml (message/rfc822)
       DELETE /messages             -> removes every stored message
"""
from __future__ import annotations

import argparse
import email
import email.policy
import json
import signal
import threading
import time
import uuid
from email.utils import formatdate, getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller


class _StoreHandler:
    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(raw)
        tmp.rename(self.folder / f"{name}.eml")  # readers never see half a message
        return "250 Message accepted for delivery"


def read_message(path: Path) -> dict:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    try:
        received = formatdate(int(path.stem.split("-")[0]) / 1e9, usegmt=True)
    except ValueError:
        received = formatdate(path.stat().st_mtime, usegmt=True)
    return {
        "id": path.stem,
        "from": str(msg.get("From", "")),
        "to": [addr for _, addr in getaddresses(msg.get_all("To", []))],
        "subject": str(msg.get("Subject", "")).strip(),  # a folded long subject reads back with a leading space
        "date": str(msg.get("Date", "")) or received,
        "received_at": received,
        "message_id": str(msg.get("Message-ID", "")),
        "list_unsubscribe": str(msg.get("List-Unsubscribe", "")) or None,
        "text": text.get_content() if text is not None else None,
        "html": html.get_content() if html is not None else None,
    }


class MessageList:
    """The folder's messages, each parsed once: a stored message never changes (it appears whole, by a rename),
    and parsing is what a listing cost (a few ms a message; a test platform holds thousands, and the tests ask
    for one recipient's mail again and again)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._parsed: dict[str, dict] = {}
        self._lock = threading.Lock()

    def __call__(self, to: str | None = None) -> list[dict]:
        names = sorted(path.name for path in self.folder.glob("*.eml"))
        with self._lock:
            for name in set(self._parsed) - set(names):  # deleted
                del self._parsed[name]
            for name in names:
                if name not in self._parsed:
                    try:
                        self._parsed[name] = read_message(self.folder / name)
                    except (OSError, ValueError):
                        continue
            messages = [dict(self._parsed[name]) for name in names if name in self._parsed]  # callers may change theirs
        if to:
            messages = [m for m in messages if to.lower() in (a.lower() for a in m["to"])]
        return messages


def _http_handler(folder: Path, list_messages: MessageList):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            if url.path in ("/messages", "/messages/"):
                to = (parse_qs(url.query).get("to") or [None])[0]
                body = json.dumps(list_messages(to), ensure_ascii=False).encode()
                return self._send(200, body, "application/json")
            if url.path.startswith("/messages/"):
                name = url.path.removeprefix("/messages/")
                path = folder / f"{name}.eml"
                if "/" not in name and ".." not in name and path.is_file():
                    return self._send(200, path.read_bytes(), "message/rfc822")
            if url.path == "/healthz":
                return self._send(200, b'{"status":"ok"}', "application/json")
            return self._send(404, b'{"title":"Not Found","status":404}', "application/problem+json")

        def do_DELETE(self):  # noqa: N802
            if urlparse(self.path).path in ("/messages", "/messages/"):
                for path in folder.glob("*.eml"):
                    path.unlink(missing_ok=True)
                return self._send(204, b"", "application/json")
            return self._send(404, b'{"title":"Not Found","status":404}', "application/problem+json")

    return Handler


class MailCatcher:
    """SMTP on ``smtp_port`` and the JSON listing on ``http_port``; ``start()`` / ``stop()`` (tests run it in-process)."""

    def __init__(self, *, smtp_port: int, http_port: int, folder: str | Path, host: str = "127.0.0.1"):
        self.host, self.smtp_port, self.http_port = host, smtp_port, http_port
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._smtp = Controller(_StoreHandler(self.folder), hostname=host, port=smtp_port)
        self.messages = MessageList(self.folder)  # messages(to=None) -> the listing, oldest first
        self._http = ThreadingHTTPServer((host, http_port), _http_handler(self.folder, self.messages))
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="mailcatcher-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def start(self) -> "MailCatcher":
        self._smtp.start()
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._smtp.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.devstack.mailcatcher",
                                     description="A local SMTP server that keeps what it receives and lists it over HTTP.")
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--http-port", type=int, default=8026)
    parser.add_argument("--dir", default="var/mail", help="folder for the .eml files")
    # All interfaces by default so the compose service "mail" is reachable from the other containers;
    # the local runner may pass --host 127.0.0.1 to keep it on loopback.
    parser.add_argument("--host", default="0.0.0.0")
    args = parser.parse_args(argv)
    catcher = MailCatcher(smtp_port=args.smtp_port, http_port=args.http_port, folder=args.dir, host=args.host).start()
    print(f"mail catcher: SMTP {args.host}:{args.smtp_port}, messages at http://{args.host}:{args.http_port}/messages,"
          f" files in {args.dir}",
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    catcher.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
