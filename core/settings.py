"""Typed settings, built once in main() from the environment and passed in."""
from __future__ import annotations

import ipaddress
import math
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from err


def _env_switch(env: dict[str, str], name: str) -> bool:
    """An on/off switch that is on unless set to "off" (unset or empty: on); anything else is refused."""
    raw = (env.get(name) or "on").strip().lower()
    if raw not in ("on", "off"):
        raise SystemExit(f"{name} is on or off, got {raw!r}")
    return raw == "on"


def _env_networks(env: dict[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of CIDRs (a bare address means one host), validated here, at start-up."""
    out = []
    for part in (env.get(name) or "").split(","):
        if part.strip():
            try:
                out.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError as err:
                raise SystemExit(f"{name}: {part.strip()!r} is not an address or CIDR network") from err
    return tuple(out)


MEDIA_RETENTION_DEFAULT_S = 5479 * 86400  # 15 years of 365.25 days, rounded up to a whole day


def _env_float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as err:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from err


def _media_retention_s(env: dict[str, str]) -> float:
    """BIDROOM_MEDIA_RETENTION_YEARS (of 365.25 days, rounded up to a whole day) or BIDROOM_MEDIA_RETENTION_DAYS;
    not both."""
    years, days = env.get("BIDROOM_MEDIA_RETENTION_YEARS"), env.get("BIDROOM_MEDIA_RETENTION_DAYS")
    if years and days:
        raise SystemExit("set BIDROOM_MEDIA_RETENTION_YEARS or BIDROOM_MEDIA_RETENTION_DAYS, not both")
    if years:
        return math.ceil(_env_float(env, "BIDROOM_MEDIA_RETENTION_YEARS", 15) * 365.25) * 86400
    return _env_float(env, "BIDROOM_MEDIA_RETENTION_DAYS", MEDIA_RETENTION_DEFAULT_S / 86400) * 86400


# settings that must be greater than zero (checked when Settings is built)
_POSITIVE = ("media_retention_s", "media_retention_sweep_s", "media_segment_s", "media_video_lost_s",
             "media_fault_after_s", "media_watchdog_s", "media_relay_queue", "media_worker_heartbeat_s",
             "media_worker_dead_after_s")


def _env_off_by_default(env: dict[str, str], name: str) -> bool:
    """An on/off switch that is off unless set to "on"; anything else is refused."""
    raw = (env.get(name) or "off").strip().lower()
    if raw not in ("on", "off"):
        raise SystemExit(f"{name} is on or off, got {raw!r}")
    return raw == "on"


@dataclass(frozen=True)
class Settings:
    """Everything the platform reads from its environment."""

    data_dir: Path = Path("var")
    database_url: str | None = None  # None: the embedded PostgreSQL in data_dir/pg
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    jwt_issuer: str = "bidroom"
    jwt_audience: str = "bidroom-api"
    access_token_ttl_s: int = 600
    refresh_token_ttl_s: int = 14 * 24 * 3600
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024
    # a bid bundle (the tar inside a bid): members (directories count) and bytes in all its files together,
    # checked as a plain bundle streams in and again, for every bundle, at the opening
    bundle_max_members: int = 1000
    bundle_max_bytes: int = 64 * 1024 * 1024
    # bid uploads: how many are read and sealed at once (the others wait, unread, in TCP), how long a body may
    # go without a byte and take in all, and the free space kept on the data volume (the embedded PostgreSQL
    # lives there too): below it new uploads are refused with 507
    upload_slots: int = 8
    upload_idle_timeout_s: int = 30
    upload_timeout_s: int = 900
    min_free_disk_mb: int = 1024
    login_max_failures_account: int = 5
    login_max_failures_ip: int = 20
    login_window_s: int = 900
    checkpoint_interval_s: int = 300
    scheduler_poll_s: float = 1.0
    run_scheduler: bool = True
    secure_cookies: bool = True
    log_json: bool = True
    db_pool_size: int = 10
    listing_cache_s: float = 30.0  # public listing pages kept in memory (0: off); changes drop them at once
    # /metrics: with a token, only `Authorization: Bearer <token>`; without one, only clients on loopback
    metrics_token: str | None = None
    # BIDROOM_STATUTORY_PERIODS: the statutory period minimums (20 days' bidding period, 3 days' publicity).
    # On unless the environment says exactly "off"; only tests and the demo turn it off, and then the server
    # warns at start, /healthz says so and every record issued carries a line saying so.
    statutory_periods: bool = True
    # proxies whose X-Forwarded-For is believed (CIDRs); empty: the direct peer is the client
    trusted_proxies: tuple[str, ...] = ()
    # sign-in backoff: after this many failures on one account (from all clients), clients that already failed
    # on it wait 2^(n - after) seconds between attempts, up to the cap; a client with no failures is not slowed
    login_account_backoff_after: int = 10
    login_account_backoff_max_s: int = 300
    # key-holder enrolments in flight (running or waiting for the scrypt pool); one more is refused with 429
    holder_key_queue: int = 8
    # the enrolment pool's priority (BIDROOM_ENROLMENT_PRIORITY): "idle" (Linux SCHED_IDLE: enrolments use only
    # the CPU nothing else wants, so a flood of them never slows anyone's requests, but a machine kept busy can
    # hold them back) or "low" (nice 10, like the opening's pool: a share of the CPU even on a busy machine)
    enrolment_priority: str = "idle"
    # POST /api/v1/records/verify: the largest PDF accepted (a 62-page evaluation report with 10 signatures is
    # about 430 KiB), uploads in flight (being read, waiting for or in the verification pool; one more is
    # refused with 429 before its body is read), the pool's worker processes, and uploads per client a minute
    verify_max_bytes: int = 8 * 1024 * 1024
    verify_queue: int = 8
    verify_workers: int = 2
    verify_per_minute: int = 30
    # a client's first 429 is answered after up to this long (never longer than its Retry-After, jittered down to
    # half), and after rate_limited_repeat_hold_s (jittered) when the same client asks again before its last
    # Retry-After has passed: a client that ignores Retry-After is slowed to one request per hold
    # (web.middleware.hold_refusal)
    rate_limited_hold_s: float = 1.0
    rate_limited_repeat_hold_s: float = 10.0
    # media plane: recordings are kept this long after their segment closes (BIDROOM_MEDIA_RETENTION_DAYS,
    # default 15 years as for trading archives), then the daily retention sweep removes the files
    media_retention_s: float = MEDIA_RETENTION_DEFAULT_S
    media_retention_sweep_s: int = 86400
    # media plane, live: a recording segment closes at the first key frame after media_segment_s
    # (BIDROOM_MEDIA_SEGMENT_S); a place without video for media_video_lost_s raises "place video lost"
    # (BIDROOM_MEDIA_VIDEO_LOST_S); a loss lasting media_fault_after_s suspends the session as a venue fault
    # (BIDROOM_MEDIA_FAULT_AFTER_S); health is checked every media_watchdog_s (BIDROOM_MEDIA_WATCHDOG_S); a slow
    # viewer may fall media_relay_queue packets behind before its video waits for a key frame
    # (BIDROOM_MEDIA_RELAY_QUEUE)
    media_segment_s: float = 60.0
    media_video_lost_s: float = 10.0
    media_fault_after_s: float = 300.0
    media_watchdog_s: float = 1.0
    media_relay_queue: int = 240
    # BIDROOM_MEDIA_WORKERS=on: separate `bidroom media-worker` processes serve signaling, each session on the
    # worker PostgreSQL assigns it; off (default, `make run`): the web process serves media itself
    media_workers: bool = False
    media_worker_heartbeat_s: float = 5.0
    media_worker_dead_after_s: float = 20.0
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = [f"{name} must be positive, got {getattr(self, name)!r}" for name in _POSITIVE
                    if not getattr(self, name) > 0]
        if not 0 <= self.rate_limited_hold_s <= 10:
            problems.append(f"rate_limited_hold_s must be between 0 and 10 seconds, got {self.rate_limited_hold_s!r}")
        if self.enrolment_priority not in ("idle", "low"):
            problems.append(f"enrolment_priority must be idle or low, got {self.enrolment_priority!r}")
        if not 0 <= self.rate_limited_repeat_hold_s <= 60:
            problems.append("rate_limited_repeat_hold_s must be between 0 and 60 seconds, "
                            f"got {self.rate_limited_repeat_hold_s!r}")
        if self.media_video_lost_s >= self.media_fault_after_s:
            problems.append("media_video_lost_s must be shorter than media_fault_after_s (a fault is a loss that "
                            f"lasts), got {self.media_video_lost_s!r} and {self.media_fault_after_s!r}")
        if self.media_watchdog_s > self.media_video_lost_s:
            problems.append(f"media_watchdog_s ({self.media_watchdog_s!r}) must not exceed media_video_lost_s "
                            f"({self.media_video_lost_s!r}): a loss would be noticed late")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Settings":
        """Read BIDROOM_* variables; explicit overrides win."""
        env = dict(os.environ if env is None else env)
        port = _env_int(env, "BIDROOM_PORT", 8080)
        host = env.get("BIDROOM_HOST", "127.0.0.1")
        values = dict(
            data_dir=Path(env.get("BIDROOM_DATA_DIR", "var")),
            database_url=env.get("BIDROOM_DATABASE_URL") or None,
            host=host,
            port=port,
            public_url=env.get("BIDROOM_PUBLIC_URL", f"http://{host}:{port}"),
            max_body_bytes=_env_int(env, "BIDROOM_MAX_BODY_BYTES", 1024 * 1024),
            max_upload_bytes=_env_int(env, "BIDROOM_MAX_UPLOAD_BYTES", 64 * 1024 * 1024),
            bundle_max_members=_env_int(env, "BIDROOM_BUNDLE_MAX_MEMBERS", 1000),
            bundle_max_bytes=_env_int(env, "BIDROOM_BUNDLE_MAX_BYTES", 64 * 1024 * 1024),
            upload_slots=_env_int(env, "BIDROOM_UPLOAD_SLOTS", 8),
            upload_idle_timeout_s=_env_int(env, "BIDROOM_UPLOAD_IDLE_TIMEOUT_S", 30),
            upload_timeout_s=_env_int(env, "BIDROOM_UPLOAD_TIMEOUT_S", 900),
            min_free_disk_mb=_env_int(env, "BIDROOM_MIN_FREE_DISK_MB", 1024),
            checkpoint_interval_s=_env_int(env, "BIDROOM_CHECKPOINT_INTERVAL_S", 300),
            log_json=env.get("BIDROOM_LOG_FORMAT", "json") == "json",
            db_pool_size=_env_int(env, "BIDROOM_DB_POOL_SIZE", 10),
            listing_cache_s=_env_int(env, "BIDROOM_LISTING_CACHE_S", 30),
            metrics_token=env.get("BIDROOM_METRICS_TOKEN") or None,
            statutory_periods=_env_switch(env, "BIDROOM_STATUTORY_PERIODS"),
            trusted_proxies=_env_networks(env, "BIDROOM_TRUSTED_PROXIES"),
            holder_key_queue=_env_int(env, "BIDROOM_HOLDER_KEY_QUEUE", 8),
            enrolment_priority=env.get("BIDROOM_ENROLMENT_PRIORITY", "idle"),
            verify_max_bytes=_env_int(env, "BIDROOM_VERIFY_MAX_BYTES", 8 * 1024 * 1024),
            verify_queue=_env_int(env, "BIDROOM_VERIFY_QUEUE", 8),
            verify_workers=_env_int(env, "BIDROOM_VERIFY_WORKERS", 2),
            verify_per_minute=_env_int(env, "BIDROOM_VERIFY_PER_MINUTE", 30),
            rate_limited_hold_s=_env_float(env, "BIDROOM_RATE_LIMITED_HOLD_S", 1.0),
            rate_limited_repeat_hold_s=_env_float(env, "BIDROOM_RATE_LIMITED_REPEAT_HOLD_S", 10.0),
            media_retention_s=_media_retention_s(env),
            media_segment_s=_env_float(env, "BIDROOM_MEDIA_SEGMENT_S", 60.0),
            media_video_lost_s=_env_float(env, "BIDROOM_MEDIA_VIDEO_LOST_S", 10.0),
            media_fault_after_s=_env_float(env, "BIDROOM_MEDIA_FAULT_AFTER_S", 300.0),
            media_watchdog_s=_env_float(env, "BIDROOM_MEDIA_WATCHDOG_S", 1.0),
            media_relay_queue=_env_int(env, "BIDROOM_MEDIA_RELAY_QUEUE", 240),
            media_workers=_env_off_by_default(env, "BIDROOM_MEDIA_WORKERS"),
            media_worker_heartbeat_s=_env_float(env, "BIDROOM_MEDIA_WORKER_HEARTBEAT_S", 5.0),
            media_worker_dead_after_s=_env_float(env, "BIDROOM_MEDIA_WORKER_DEAD_AFTER_S", 20.0),
        )
        values.update(overrides)
        try:
            return cls(**values)
        except ValueError as err:
            raise SystemExit(f"invalid settings: {err}") from err

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"


def ensure_secret_file(path: Path, nbytes: int = 32) -> bytes:
    """Return the secret stored at path, generating it (mode 0600) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(nbytes))
    return path.read_bytes()


def write_private_file(path: Path, data: bytes) -> None:
    """Write data to a new file readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
