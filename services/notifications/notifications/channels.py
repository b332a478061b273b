"""Channel adapters: how a rendered message leaves the service. Each ``send`` raises ``SendFailed``
(with a reason for the delivery log) when the channel did not accept the message."""
from __future__ import annotations

import contextlib
import json
import os
import select
import smtplib
import ssl
import threading
import time
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.policy import default as default_policy
from email.utils import formatdate
from pathlib import Path

import requests

from notifications.config import Settings
from notifications.model import webhook_signature

SIGNATURE_HEADER = "X-RecoveryNet-Signature"
TIMESTAMP_HEADER = "X-RecoveryNet-Timestamp"
DELIVERY_HEADER = "X-RecoveryNet-Delivery"
EVENT_TYPE_HEADER = "X-RecoveryNet-Event-Type"


class SendFailed(Exception):
    """The channel did not take the message. ``permanent``: trying again cannot help (a refused or
    malformed address), so the delivery fails now instead of after every retry."""

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent


class _MailPolicy(EmailPolicy):
    """The default email policy, except that the List-Unsubscribe headers go out as written: ``<URL>``
    entries folded only between entries, never turned into RFC 2047 encoded-words (which the default
    policy does to a line longer than 78 characters, and after which mail clients no longer find the URL).
    A line may be up to 998 characters (RFC 5322), far more than a signed link needs."""

    VERBATIM = frozenset({"list-unsubscribe", "list-unsubscribe-post"})

    def fold(self, name, value):
        if name.lower() in self.VERBATIM and str(value).isascii():
            return self._verbatim(name, str(value))
        return super().fold(name, value)

    def fold_binary(self, name, value):
        if name.lower() in self.VERBATIM and str(value).isascii():
            return self._verbatim(name, str(value)).encode("ascii")
        return super().fold_binary(name, value)

    def _verbatim(self, name: str, value: str) -> str:
        entries = [part.strip() for part in value.replace("\r", "").replace("\n", "").split(",") if part.strip()]
        lines, line = [], f"{name}:"
        for i, entry in enumerate(entries):
            token = entry + ("," if i < len(entries) - 1 else "")
            if line.endswith(":") or len(line) + 1 + len(token) <= (self.max_line_length or 998):
                line += " " + token
            else:
                lines.append(line)
                line = " " + token
        lines.append(line)
        return self.linesep.join(lines) + self.linesep


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, except that the class made for a header name is kept: the standard
    one builds a new class with ``type()`` on every header it parses (about 0.2 ms each, a dozen per
    message: most of the cost of building an email). The class for a name never changes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._made: dict[str, type] = {}

    def __getitem__(self, name):
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made

    def map_to_type(self, name, cls):
        super().map_to_type(name, cls)
        self._made.pop(name.lower(), None)


MAIL_POLICY = _MailPolicy(**{**default_policy.__dict__, "header_factory": _HeaderClasses()})


class EmailSender:
    """Email over SMTP: multipart/alternative with a plain-text and an HTML part.

    Inside ``connection_reuse()`` (a sender's run of the delivery job) messages share one SMTP session:
    one TCP connect, greeting, EHLO, STARTTLS and login for many messages rather than per message, and
    no extra round trip per message. Before each reuse the socket is looked at without a round trip (a
    server that dropped the connection, or said 421 and closed it, has left it readable): a dead
    connection is replaced before the message, so it costs no delivery a try. The session is renewed
    after ``smtp_messages_per_connection`` messages and dropped after any failure."""

    def __init__(self, settings: Settings):
        self.s = settings
        self._lock = threading.Lock()
        self._reuse = 0
        self._smtp: smtplib.SMTP | None = None
        self._sent_on_connection = 0

    @contextlib.contextmanager
    def connection_reuse(self):
        with self._lock:
            self._reuse += 1
        try:
            yield self
        finally:
            with self._lock:
                self._reuse -= 1
                if not self._reuse:
                    self._close()

    def build(self, *, to: str, subject: str, text: str, html: str, delivery_id: str,
              unsubscribe_url: str | None) -> EmailMessage:
        msg = EmailMessage(policy=MAIL_POLICY)
        msg["From"] = self.s.smtp_from
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        # One Message-ID per delivery, the same on every try: a message sent again after a worker died
        # between the server's acceptance and our record of it is recognisably the same message.
        msg["Message-ID"] = f"<{delivery_id}@recoverynet.local>"
        msg["X-RecoveryNet-Delivery"] = delivery_id
        if unsubscribe_url:
            # RFC 2369 / RFC 8058: the link, and that a POST to it unsubscribes at once (one-click);
            # opening it (GET) only shows a page with a button, so link scanners unsubscribe nobody.
            msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        return msg

    @staticmethod
    def check_address(address: str | None) -> str:
        """A light syntax check (the SMTP server judges the rest). Special-use domains such as .local or
        .test stay allowed, so local demos work."""
        local, at, domain = (address or "").rpartition("@")
        if not at or not local or not domain or any(c.isspace() or ord(c) < 32 for c in address) or "@" in domain:
            raise SendFailed("email address not valid", permanent=True)
        return address

    def send(self, msg: EmailMessage) -> None:
        with self._lock:
            try:
                smtp = self._connection()
                smtp.send_message(msg)
                self._sent_on_connection += 1
            except smtplib.SMTPRecipientsRefused as exc:
                self._close()
                raise SendFailed(f"smtp: recipient refused {exc.recipients!r}"[:500], permanent=True) from exc
            except smtplib.SMTPResponseException as exc:
                self._close()
                permanent = 500 <= exc.smtp_code < 600 and not isinstance(exc, smtplib.SMTPSenderRefused)
                raise SendFailed(f"smtp: {exc.smtp_code} {exc.smtp_error!r}"[:500], permanent=permanent) from exc
            except (smtplib.SMTPException, OSError) as exc:
                self._close()
                raise SendFailed(f"smtp: {exc!r}"[:500]) from exc
            finally:
                if not self._reuse:
                    self._close()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            worn = self._sent_on_connection >= self.s.smtp_messages_per_connection
            if worn or not self._answers():
                self._close()
        if self._smtp is None:
            smtp = smtplib.SMTP(self.s.smtp_host, self.s.smtp_port, timeout=self.s.smtp_timeout_seconds)
            try:
                if self.s.smtp_starttls:
                    smtp.starttls()
                if self.s.smtp_username:
                    smtp.login(self.s.smtp_username, self.s.smtp_password or "")
            except BaseException:
                smtp.close()
                raise
            self._smtp, self._sent_on_connection = smtp, 0
        return self._smtp

    def _answers(self) -> bool:
        """Whether the idle connection still looks open, without a round trip. Between messages the server
        has nothing to say, so a readable socket (end of stream, a 421 before closing) means it is gone.
        Under TLS a readable socket may only hold TLS records (a session ticket): there a NOOP decides."""
        sock = getattr(self._smtp, "sock", None)
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        if not readable:
            return True
        if isinstance(sock, ssl.SSLSocket):
            try:
                return self._smtp.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                return False
        return False

    def _close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


class FileSms:
    """The local SMS provider: one JSON line per message appended to a file."""

    _lock = threading.Lock()

    def __init__(self, path: str, sender: str):
        self.path, self.sender = Path(path), sender

    def send(self, *, to: str, text: str, delivery_id: str) -> None:
        line = json.dumps({"id": delivery_id, "from": self.sender, "to": to, "text": text,
                           "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, ensure_ascii=False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, open(self.path, "a", encoding="utf-8") as out:
                out.write(line + "\n")
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise SendFailed(f"sms file: {exc!r}") from exc


class HttpSms:
    """An HTTP SMS provider: POST {from, to, text, reference} with a bearer token; 2xx is accepted."""

    def __init__(self, url: str, token: str | None, sender: str, timeout: float):
        self.url, self.token, self.sender, self.timeout = url, token, sender, timeout

    def send(self, *, to: str, text: str, delivery_id: str) -> None:
        headers = {"Idempotency-Key": delivery_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = requests.post(self.url, json={"from": self.sender, "to": to, "text": text,
                                                     "reference": delivery_id}, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SendFailed(f"sms http: {exc!r}"[:500]) from exc
        if not 200 <= response.status_code < 300:
            raise SendFailed(f"sms http: status {response.status_code}")


class WebhookSender:
    """POST the event to an organization's endpoint, signed: X-RecoveryNet-Signature is
    "sha256=" + HMAC-SHA256(secret, "<X-RecoveryNet-Timestamp>.<body>"). 2xx is accepted."""

    def __init__(self, timeout: float):
        self.timeout = timeout

    def send(self, *, url: str, secret: str, body: bytes, delivery_id: str, event_type: str) -> int:
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: webhook_signature(secret, timestamp, body),
                   DELIVERY_HEADER: delivery_id, EVENT_TYPE_HEADER: event_type}
        try:
            response = requests.post(url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise SendFailed(f"webhook: {exc!r}"[:500]) from exc
        if not 200 <= response.status_code < 300:
            raise SendFailed(f"webhook: status {response.status_code}")
        return response.status_code


class Channels:
    """The composition of the adapters one worker uses (tests build it from their own Settings)."""

    def __init__(self, settings: Settings):
        self.email = EmailSender(settings)
        if settings.sms_provider == "http":
            self.sms = HttpSms(settings.sms_http_url, settings.sms_http_token, settings.sms_from,
                               settings.webhook_timeout_seconds)
        else:
            self.sms = FileSms(settings.sms_outbox_path, settings.sms_from)
        self.webhook = WebhookSender(settings.webhook_timeout_seconds)
