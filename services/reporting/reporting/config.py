"""Settings.from_env(): the only reader of the environment for the reporting service."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from shared.config import EnvReader, PlatformSettings

SERVICE = "reporting"
MIN_CELL_FLOOR = 11  # the smallest suppression threshold allowed (health statistics practice)


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    # Keys the pseudonyms the database stores instead of people's ids (never stored in the database).
    pseudonym_key: str = "dev-only-pseudonym-key-change-me-0123456789"  # REPORTING_PSEUDONYM_KEY (>= 32 chars)
    # Any cell counting fewer people than this is suppressed; never below MIN_CELL_FLOOR.
    min_cell: int = MIN_CELL_FLOOR                  # REPORTING_MIN_CELL

    def __post_init__(self):
        if isinstance(self.min_cell, int) and self.min_cell < MIN_CELL_FLOOR:
            raise ValueError(f"min_cell must be at least {MIN_CELL_FLOOR}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = EnvReader(os.environ if environ is None else environ)
        settings = cls(
            platform=PlatformSettings.read(env, SERVICE),
            pseudonym_key=env.secret("REPORTING_PSEUDONYM_KEY"),
            min_cell=env.int("REPORTING_MIN_CELL", MIN_CELL_FLOOR, minimum=MIN_CELL_FLOOR),
        )
        env.done()  # raises ConfigError naming every missing or malformed setting
        return settings
