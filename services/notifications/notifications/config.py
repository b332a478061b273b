"""Settings.from_env(): the only reader of the environment for the notifications service."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Mapping

from shared.config import EnvReader, PlatformSettings

SERVICE = "notifications"


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    # Email over real SMTP (the local runner starts shared.devstack.mailcatcher on 8025).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_from: str = "Recovery Network <no-reply@recoverynet.local>"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    # The delivery job sends a batch over one connection, renewed after this many messages.
    smtp_messages_per_connection: int = 100
    # SMS: "file" appends one JSON line per message to sms_outbox_path; "http" posts to sms_http_url.
    sms_provider: str = "file"
    sms_outbox_path: str = "var/sms/outbox.jsonl"
    sms_http_url: str | None = None
    sms_http_token: str | None = None
    sms_from: str = "RecoveryNet"
    # Webhooks to organizations' endpoints.
    webhook_timeout_seconds: float = 5.0
    # Retries of a failing channel: attempt n waits retry_base_seconds * retry_multiplier ** (n - 1).
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    retry_multiplier: float = 4.0
    # A delivery whose recipient is not known yet (their contact or consents come on other topics and may
    # arrive after the event that tells them) is due again as soon as they arrive; meanwhile it is looked at
    # again after this wait, doubling up to 5 minutes, without counting tries, for at most the limit (then
    # its tries count, with the back-off above).
    recipient_wait_seconds: float = 5.0
    recipient_wait_limit_seconds: float = 3600.0
    # A sender holds a delivery this long; a delivery still 'sending' after it (its worker died) is taken
    # over and sent again.
    sending_lease_seconds: float = 120.0
    # The delivery job: how many senders (threads, each with its own SMTP connection) share the due
    # deliveries, and how many each claims, sends and records at once (one lease, one transaction).
    delivery_senders: int = 2
    delivery_batch: int = 50
    # Periodic jobs (seconds between runs).
    delivery_interval_seconds: float = 1.0
    release_interval_seconds: float = 30.0
    digest_interval_seconds: float = 300.0
    digest_local_hour: int = 8
    # Links in emails point here (the unsubscribe endpoint); the secret signs unsubscribe tokens.
    public_base_url: str = "http://127.0.0.1:8004"
    # UNSUBSCRIBE_SECRET, required by from_env (the web and worker processes must share it); a Settings
    # made in code (tests: one process holds both) gets a random one of its own.
    unsubscribe_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def link_secret(self) -> str:
        return self.unsubscribe_secret

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = EnvReader(os.environ if environ is None else environ)
        platform = PlatformSettings.read(env, SERVICE)
        settings = cls(
            platform=platform,
            smtp_host=env.str("SMTP_HOST", cls.smtp_host),
            smtp_port=env.int("SMTP_PORT", cls.smtp_port, minimum=1),
            smtp_from=env.str("SMTP_FROM", cls.smtp_from),
            smtp_username=env.str("SMTP_USERNAME", None),
            smtp_password=env.str("SMTP_PASSWORD", None),
            smtp_starttls=env.bool("SMTP_STARTTLS", False),
            smtp_timeout_seconds=env.float("SMTP_TIMEOUT_SECONDS", cls.smtp_timeout_seconds),
            smtp_messages_per_connection=env.int("SMTP_MESSAGES_PER_CONNECTION", cls.smtp_messages_per_connection,
                                                 minimum=1),
            sms_provider=env.str("SMS_PROVIDER", cls.sms_provider, expected="file or http"),
            sms_outbox_path=env.str("SMS_OUTBOX_PATH", cls.sms_outbox_path),
            sms_http_url=env.str("SMS_HTTP_URL", None),
            sms_http_token=env.str("SMS_HTTP_TOKEN", None),
            sms_from=env.str("SMS_FROM", cls.sms_from),
            webhook_timeout_seconds=env.float("WEBHOOK_TIMEOUT_SECONDS", cls.webhook_timeout_seconds),
            max_attempts=env.int("NOTIFY_MAX_ATTEMPTS", cls.max_attempts, minimum=1),
            retry_base_seconds=env.float("NOTIFY_RETRY_BASE_SECONDS", cls.retry_base_seconds),
            retry_multiplier=env.float("NOTIFY_RETRY_MULTIPLIER", cls.retry_multiplier),
            recipient_wait_seconds=env.float("NOTIFY_RECIPIENT_WAIT_SECONDS", cls.recipient_wait_seconds),
            recipient_wait_limit_seconds=env.float("NOTIFY_RECIPIENT_WAIT_LIMIT_SECONDS",
                                                   cls.recipient_wait_limit_seconds),
            sending_lease_seconds=env.float("NOTIFY_SENDING_LEASE_SECONDS", cls.sending_lease_seconds),
            delivery_senders=env.int("NOTIFY_DELIVERY_SENDERS", cls.delivery_senders, minimum=1),
            delivery_batch=env.int("NOTIFY_DELIVERY_BATCH", cls.delivery_batch, minimum=1),
            delivery_interval_seconds=env.float("NOTIFY_DELIVERY_INTERVAL_SECONDS", cls.delivery_interval_seconds),
            release_interval_seconds=env.float("NOTIFY_RELEASE_INTERVAL_SECONDS", cls.release_interval_seconds),
            digest_interval_seconds=env.float("NOTIFY_DIGEST_INTERVAL_SECONDS", cls.digest_interval_seconds),
            digest_local_hour=env.int("NOTIFY_DIGEST_LOCAL_HOUR", cls.digest_local_hour, minimum=0),
            public_base_url=env.str("NOTIFICATIONS_PUBLIC_URL", platform.public_base_url if platform else cls.public_base_url).rstrip("/"),
            unsubscribe_secret=env.secret("UNSUBSCRIBE_SECRET"),
        )
        if settings.sms_provider not in ("file", "http"):
            env.problems.append(f"SMS_PROVIDER={settings.sms_provider!r} is malformed: expected file or http")
        if settings.sms_provider == "http" and not settings.sms_http_url:
            env.problems.append("SMS_HTTP_URL is required when SMS_PROVIDER=http")
        env.done()  # raises ConfigError naming every missing or malformed setting
        return settings
