"""Settings.from_env(): the only reader of the environment for the console.

The console holds no domain data and no Kafka client, so it does not read the platform's Kafka or token
settings: it needs its database (sessions only), a secret for its own signatures (CSRF tokens), where it
is reached from outside, and where the four services answer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from shared.config import EnvReader

SERVICE = "console"


@dataclass(frozen=True)
class Settings:
    mongo_uri: str
    secret_key: str
    mongo_database: str = "recoverynet_console"
    mongo_timeout_ms: int = 5000
    # Where people reach the console; https here makes the session cookie Secure.
    public_base_url: str = "http://127.0.0.1:8005"
    intake_url: str = "http://127.0.0.1:8001"
    matching_url: str = "http://127.0.0.1:8002"
    scheduling_url: str = "http://127.0.0.1:8003"
    notifications_url: str = "http://127.0.0.1:8004"
    reporting_url: str = "http://127.0.0.1:8006"   # issue 18: the Reports page reads the outcome report from it
    # Staff sessions end after this long without a request, and after this long in all.
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    # How long one call to a service may take, and how long a page waits out "not yet known" in all.
    api_timeout_seconds: float = 10.0
    not_yet_known_wait_seconds: float = 3.0
    # How long a person's sites, and the names of people lists show, are kept in the console's memory between
    # pages (Api.get_kept, Api.kept_records): a change made elsewhere (not through this console process) shows within it.
    kept_answer_seconds: float = 30.0
    log_level: str = "INFO"

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")

    def service_url(self, service: str) -> str:
        return {"intake": self.intake_url, "matching": self.matching_url, "scheduling": self.scheduling_url,
                "notifications": self.notifications_url, "reporting": self.reporting_url}[service]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = EnvReader(os.environ if environ is None else environ)
        url = lambda name, default: env.str(name, default, expected="an http(s) URL").rstrip("/")  # noqa: E731
        settings = cls(
            mongo_uri=env.mongo_uri(),
            secret_key=env.secret("CONSOLE_SECRET_KEY"),
            mongo_database=env.str("MONGO_DATABASE", cls.mongo_database),
            mongo_timeout_ms=env.int("MONGO_TIMEOUT_MS", cls.mongo_timeout_ms, minimum=100),
            public_base_url=url("CONSOLE_PUBLIC_URL", env.str("PUBLIC_BASE_URL", cls.public_base_url)),
            intake_url=url("INTAKE_URL", cls.intake_url),
            matching_url=url("MATCHING_URL", cls.matching_url),
            scheduling_url=url("SCHEDULING_URL", cls.scheduling_url),
            notifications_url=url("NOTIFICATIONS_URL", cls.notifications_url),
            reporting_url=url("REPORTING_URL", cls.reporting_url),
            session_idle_minutes=env.int("SESSION_IDLE_MINUTES", cls.session_idle_minutes, minimum=1),
            session_max_hours=env.int("SESSION_MAX_HOURS", cls.session_max_hours, minimum=1),
            api_timeout_seconds=env.float("CONSOLE_API_TIMEOUT_SECONDS", cls.api_timeout_seconds),
            not_yet_known_wait_seconds=env.float("CONSOLE_NOT_YET_KNOWN_WAIT_SECONDS", cls.not_yet_known_wait_seconds),
            kept_answer_seconds=env.float("CONSOLE_KEPT_ANSWER_SECONDS", cls.kept_answer_seconds),
            log_level=env.str("LOG_LEVEL", cls.log_level),
        )
        for variable, name in (("CONSOLE_PUBLIC_URL", "public_base_url"), ("INTAKE_URL", "intake_url"),
                               ("MATCHING_URL", "matching_url"), ("SCHEDULING_URL", "scheduling_url"),
                               ("NOTIFICATIONS_URL", "notifications_url"), ("REPORTING_URL", "reporting_url")):
            value = getattr(settings, name)
            if value and not value.startswith(("http://", "https://")):
                env.problems.append(f"{variable}={value!r} is malformed: expected an http(s) URL")
        env.done()  # raises ConfigError naming every missing or malformed setting
        return settings
