"""Media tests: short segments (5 s) so a 20 s publication closes several; an evaluation session started through
the evaluation domain's own test helpers (5 experts checked in at their places, the chair elected)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.settings import Settings
from tests.helpers import Actor
from tests.integration.evaluation.conftest import admin  # noqa: F401  (fixture)
from tests.integration.evaluation.session_setup import Started, started_session
from tests.integration.trading_bids.conftest import wrapped_holder_keys  # noqa: F401  (fixture)


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=db_url, run_scheduler=False, log_json=False,
                    public_url="http://127.0.0.1:8080", max_body_bytes=64 * 1024, statutory_periods=False,
                    extra={"media_segment_s": "5", "media_watchdog_s": "0.5"})


@dataclass
class Member:
    member_id: str
    place_id: str
    actor: Actor


@dataclass
class Live:
    started: Started
    session_id: str
    members: list[Member]   # by member id; members[0] is the chair
    supervisor: Actor
    agent: Actor


@pytest.fixture
async def live(sessions, client, raw_conn, wrapped_holder_keys, admin) -> Live:  # noqa: F811
    started = await started_session(sessions, client, raw_conn, wrapped_holder_keys, admin)
    rows = await raw_conn.fetch(
        "SELECT m.public_id AS member, p.public_id AS place FROM evaluation_member m "
        "JOIN venue_place p ON p.id = m.place_id JOIN evaluation_session s ON s.id = m.session_id "
        "WHERE s.public_id = $1 AND m.status = 'checked_in' ORDER BY m.public_id", started.ready.session_id)
    members = [Member(r["member"], r["place"], started.members[r["member"]]) for r in rows]
    members.sort(key=lambda m: m.member_id != started.chair)
    return Live(started, started.ready.session_id, members, started.ready.supervisor, started.ready.info.agent)
