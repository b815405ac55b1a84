"""The media plane's settings, taken from the typed `core.settings.Settings` (BIDROOM_MEDIA_* in the
environment, validated when the settings are built)."""
from __future__ import annotations

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
    workers: bool = False            # media workers serve the media (BIDROOM_MEDIA_WORKERS): the web tier records none

    @classmethod
    def from_settings(cls, settings: Settings) -> "MediaConfig":
        return cls(root=settings.data_dir / "media", segment_s=settings.media_segment_s,
                   video_lost_s=settings.media_video_lost_s, fault_after_s=settings.media_fault_after_s,
                   watchdog_s=settings.media_watchdog_s, relay_queue=settings.media_relay_queue,
                   workers=settings.media_workers)
