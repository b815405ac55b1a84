"""The media plane's settings are typed fields of Settings, read from BIDROOM_MEDIA_* and validated at start-up."""
import pytest

from core.settings import MEDIA_RETENTION_DEFAULT_S, Settings
from evaluation.media.config import MediaConfig


def test_media_settings_come_from_the_environment_with_the_products_defaults():
    default = MediaConfig.from_settings(Settings.from_env({}))
    assert (default.segment_s, default.video_lost_s, default.fault_after_s, default.watchdog_s,
            default.relay_queue) == (60.0, 10.0, 300.0, 1.0, 240)
    settings = Settings.from_env({"BIDROOM_MEDIA_SEGMENT_S": "30", "BIDROOM_MEDIA_VIDEO_LOST_S": "8",
                                  "BIDROOM_MEDIA_FAULT_AFTER_S": "120", "BIDROOM_MEDIA_WATCHDOG_S": "0.5",
                                  "BIDROOM_MEDIA_RELAY_QUEUE": "100", "BIDROOM_MEDIA_RETENTION_YEARS": "30"})
    config = MediaConfig.from_settings(settings)
    assert (config.segment_s, config.video_lost_s, config.fault_after_s, config.watchdog_s,
            config.relay_queue) == (30.0, 8.0, 120.0, 0.5, 100)
    assert settings.media_retention_s == 10958 * 86400  # 30 × 365.25 days, rounded up to a whole day
    assert Settings.from_env({}).media_retention_s == MEDIA_RETENTION_DEFAULT_S
    with pytest.raises(ValueError, match="media_segment_s must be positive"):
        Settings(media_segment_s=0)  # built in code (tests, embedding): the same checks


@pytest.mark.parametrize("env, says", [
    ({"BIDROOM_MEDIA_SEGMENT_S": "0"}, "media_segment_s must be positive"),
    ({"BIDROOM_MEDIA_SEGMENT_S": "a minute"}, "BIDROOM_MEDIA_SEGMENT_S must be a number"),
    ({"BIDROOM_MEDIA_RELAY_QUEUE": "-1"}, "media_relay_queue must be positive"),
    ({"BIDROOM_MEDIA_VIDEO_LOST_S": "400"}, "media_video_lost_s must be shorter than media_fault_after_s"),
    ({"BIDROOM_MEDIA_WATCHDOG_S": "20"}, "media_watchdog_s (20.0) must not exceed media_video_lost_s"),
    ({"BIDROOM_MEDIA_RETENTION_YEARS": "15", "BIDROOM_MEDIA_RETENTION_DAYS": "30"}, "not both"),
    ({"BIDROOM_MEDIA_RETENTION_DAYS": "-5"}, "media_retention_s must be positive"),
])
def test_a_bad_media_setting_stops_the_start_with_its_name(env, says):
    with pytest.raises(SystemExit, match=says.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)
