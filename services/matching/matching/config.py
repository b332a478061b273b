"""Settings.from_env(): the only reader of the environment for the matching service."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from shared.config import EnvReader, PlatformSettings

SERVICE = "matching"


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    # How often the worker's periodic jobs run (seconds).
    expiry_interval_seconds: float = 30.0          # MATCHING_EXPIRY_INTERVAL_SECONDS: expire unanswered proposals
    lapse_interval_seconds: float = 3600.0         # MATCHING_LAPSE_INTERVAL_SECONDS: certifications/consents run out
    waitlist_alert_interval_seconds: float = 3600.0  # MATCHING_WAITLIST_ALERT_INTERVAL_SECONDS
    batch_poll_seconds: float = 2.0                # MATCHING_BATCH_POLL_SECONDS: pick up queued batch runs

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = EnvReader(os.environ if environ is None else environ)
        settings = cls(
            platform=PlatformSettings.read(env, SERVICE),
            expiry_interval_seconds=env.float("MATCHING_EXPIRY_INTERVAL_SECONDS", 30.0),
            lapse_interval_seconds=env.float("MATCHING_LAPSE_INTERVAL_SECONDS", 3600.0),
            waitlist_alert_interval_seconds=env.float("MATCHING_WAITLIST_ALERT_INTERVAL_SECONDS", 3600.0),
            batch_poll_seconds=env.float("MATCHING_BATCH_POLL_SECONDS", 2.0),
        )
        env.done()  # raises ConfigError naming every missing or malformed setting
        return settings
