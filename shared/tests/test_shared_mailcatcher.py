"""The local mail catcher (shared/devstack/mailcatcher.py): real SMTP in, the JSON listing out."""
import smtplib
from email.message import EmailMessage

import requests

from shared.devstack.mailcatcher import MailCatcher
from shared.devstack.servers import free_port


def _send(port: int, to: str, subject: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "platform@example.org", to, subject
    msg.set_content(f"About {subject}")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg)


def test_the_listing_shows_each_message_once_by_recipient_and_follows_new_and_deleted_ones(tmp_path):
    catcher = MailCatcher(smtp_port=free_port(), http_port=free_port(), folder=tmp_path).start()
    try:
        _send(catcher.smtp_port, "Ana@example.org", "first")
        _send(catcher.smtp_port, "ben@example.org", "second")
        listing = requests.get(f"{catcher.url}/messages", timeout=10).json()
        assert [m["subject"] for m in listing] == ["first", "second"]
        assert [m["text"].strip() for m in catcher.messages(to="ana@example.org")] == ["About first"]
        _send(catcher.smtp_port, "ana@example.org", "third")  # after a listing parsed the first two
        assert [m["subject"] for m in requests.get(f"{catcher.url}/messages", params={"to": "ANA@example.org"},
                                                   timeout=10).json()] == ["first", "third"]
        raw = requests.get(f"{catcher.url}/messages/{listing[1]['id']}", timeout=10)
        assert raw.headers["Content-Type"] == "message/rfc822" and b"Subject: second" in raw.content
        assert requests.delete(f"{catcher.url}/messages", timeout=10).status_code == 204
        assert catcher.messages() == []
        _send(catcher.smtp_port, "ben@example.org", "fourth")
        assert [m["subject"] for m in catcher.messages()] == ["fourth"]
    finally:
        catcher.stop()
