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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = EnvReader(os.environ if environ is None else environ)
        settings = cls(platform=PlatformSettings.read(env, SERVICE))
        env.done()  # raises ConfigError naming every missing or malformed setting
        return settings
