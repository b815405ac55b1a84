"""The media plane's settings: read from `Settings.extra` (tests, embedding) or the environment (BIDROOM_MEDIA_*),
with the defaults the product asks for."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings


@dataclass(frozen=True)
class MediaConfig:
    root: Path                       # the media store (core.storage.Storage root): <data_dir>/media
    segment_s: float = 60.0          # a recording segment closes at the first key frame after this long
    video_lost_s: float = 10.0       # a place without video this long raises "place video lost"
    fault_after_s: float = 300.0     # a loss lasting this long is reported as a venue fault (fault timers)
    watchdog_s: float = 1.0          # how often health is checked
    relay_queue: int = 240           # packets a slow viewer may fall behind before its video waits for a key frame

    @classmethod
    def from_settings(cls, settings: Settings, env: dict[str, str] | None = None) -> "MediaConfig":
        env = dict(os.environ if env is None else env)

        def value(name: str, default: float) -> float:
            raw = settings.extra.get(f"media_{name}") or env.get(f"BIDROOM_MEDIA_{name.upper()}")
            if raw in (None, ""):
                return default
            try:
                number = float(raw)
            except ValueError as err:
                raise SystemExit(f"media setting {name} must be a number, got {raw!r}") from err
            if number <= 0:
                raise SystemExit(f"media setting {name} must be positive, got {raw!r}")
            return number

        return cls(root=settings.data_dir / "media", segment_s=value("segment_s", 60.0),
                   video_lost_s=value("video_lost_s", 10.0), fault_after_s=value("fault_after_s", 300.0),
                   watchdog_s=value("watchdog_s", 1.0), relay_queue=int(value("relay_queue", 240)))
