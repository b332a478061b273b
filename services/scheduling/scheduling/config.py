"""Settings.from_env(): the only reader of the environment for the scheduling service."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from shared.config import EnvReader, PlatformSettings

from scheduling.model import parse_offsets

SERVICE = "scheduling"


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    # Minutes before an occurrence or session when a reminder becomes due (largest first).
    reminder_offsets_minutes: tuple[int, ...] = (1440, 60)
    # How often the worker looks for due reminders.
    reminder_interval_seconds: float = 60.0
    # One-on-one session suggestions after a match becomes active.
    session_minutes: int = 60
    suggestion_count: int = 5
    suggestion_horizon_days: int = 14
    suggestion_lead_hours: int = 12
    # How far ahead new meetings are checked for facilitator conflicts.
    conflict_horizon_days: int = 180
    # Kafka consumer group; None: the platform's "recoverynet.scheduling" (tests isolate with their own).
    consumer_group: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = EnvReader(os.environ if environ is None else environ)
        offsets = env._get("REMINDER_OFFSETS_MINUTES", (1440, 60), parse_offsets,
                           "comma-separated positive minutes, e.g. 1440,60")
        settings = cls(
            platform=PlatformSettings.read(env, SERVICE),
            reminder_offsets_minutes=offsets,
            reminder_interval_seconds=env.float("REMINDER_INTERVAL_SECONDS", 60.0),
            session_minutes=env.int("SESSION_MINUTES", 60, minimum=15),
            suggestion_count=env.int("SESSION_SUGGESTION_COUNT", 5, minimum=1),
            suggestion_horizon_days=env.int("SESSION_SUGGESTION_HORIZON_DAYS", 14, minimum=1),
            suggestion_lead_hours=env.int("SESSION_SUGGESTION_LEAD_HOURS", 12, minimum=0),
            conflict_horizon_days=env.int("CONFLICT_HORIZON_DAYS", 180, minimum=7),
        )
        env.done()  # raises ConfigError naming every missing or malformed setting
        return settings
