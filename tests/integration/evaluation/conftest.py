"""Building blocks for venue and session tests: signed-in staff, the two Guangdong centres made over HTTP, tenders
with a lot reached through the trading services, times for bookings, and the lot states built once per run through
the API and copied for each test (tests/integration/lot_states.py)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from core import identity_service
from tests.helpers import Actor, social_credit_code, staff
from tests.integration.lot_states import fixtures

_n = itertools.count(1)

VENUE_TABLES = ("venue_site", "venue_room", "venue_place", "room_booking", "audit_entry")


async def organisation(sessions, name: str | None = None) -> str:
    async with sessions() as session, session.begin():
        org = await identity_service.create_organisation(
            session, actor="system", name=name or f"测试单位{next(_n)}有限公司", social_credit_code=social_credit_code())
        return org.public_id


@pytest.fixture
async def admin(sessions, client) -> Actor:
    return await staff(sessions, client, "admin")


@pytest.fixture
async def agent(sessions, client) -> Actor:
    return await staff(sessions, client, "agent", organisation_public_id=await organisation(sessions, "广东中诚招标代理有限公司"))


@pytest.fixture
async def other_agent(sessions, client) -> Actor:
    return await staff(sessions, client, "agent", organisation_public_id=await organisation(sessions, "中山市信达招标代理有限公司"))


@dataclass
class TenderRef:
    code: str
    lot_id: str
    supervisor_org: str


async def tender_with_lot(sessions, agent: Actor, *, status: str = "published") -> TenderRef:
    """A tender with one lot managed by `agent`, supervised by a new organisation, reached through the trading
    services (tests/integration/trading_bids/conftest.py `service_tender`): "published" (sessions may be scheduled
    and rooms booked for it), "draft" or "cancelled" (a final state)."""
    from tests.integration.trading_bids.conftest import service_tender
    tenderer = await organisation(sessions, f"中山市第{next(_n)}人民医院")
    supervisor_org = await organisation(sessions, f"中山市住房和城乡建设局{next(_n)}科")
    made = await service_tender(sessions, agent, tenderer=tenderer, supervisor_org=supervisor_org, state=status)
    return TenderRef(made.code, made.lot_id, supervisor_org)


def at(day: int, hour: int, minute: int = 0) -> str:
    """A time `day` days from today at hh:mm Beijing time (UTC+8), RFC 3339."""
    beijing = timezone(timedelta(hours=8))
    base = datetime.now(beijing).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=day)
    return base.replace(hour=hour, minute=minute).isoformat()


def same_instant(a: str, b: str) -> bool:
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


async def snapshot(raw_conn) -> dict:
    """Row counts of the venue tables and the ledger, and every row's standing."""
    state = {t: await raw_conn.fetchval(f"SELECT count(*) FROM {t}") for t in VENUE_TABLES}
    for table in ("venue_site", "venue_room", "venue_place"):
        state[table + "_rows"] = [tuple(r) for r in await raw_conn.fetch(
            f"SELECT public_id, status, updated_at FROM {table} ORDER BY id")]
    state["bookings"] = [tuple(r) for r in await raw_conn.fetch(
        "SELECT public_id, status, starts_at, ends_at FROM room_booking ORDER BY id")]
    return state


async def post(client, url: str, actor: Actor, body: dict | None = None, status: int | None = None) -> dict:
    resp = await client.post(url, headers=actor.headers, json=body if body is not None else {})
    data = await resp.json()
    if status is not None:
        assert resp.status == status, data
    return data


@dataclass
class Venue:
    site: str
    room: str
    places: list[str]


async def guangdong_centres(client, admin: Actor) -> tuple[Venue, Venue]:
    """The seed case: the provincial centre in Guangzhou and the Zhongshan centre, one room each with places."""
    out = []
    for name, region, room_name, labels in (("广东省公共资源交易中心", "440100", "第1评标室", ["A-01", "A-02"]),
                                            ("中山市公共资源交易中心", "442000", "远程异地评标室", ["B-01", "B-02", "B-03"])):
        site = await post(client, "/api/v1/sites", admin, {"name": name, "region_code": region, "address": "—"}, 201)
        room = await post(client, f"/api/v1/sites/{site['site_id']}/rooms", admin, {"name": room_name}, 201)
        places = [(await post(client, f"/api/v1/rooms/{room['room_id']}/places", admin, {"label": label}, 201))
                  ["place_id"] for label in labels]
        out.append(Venue(site["site_id"], room["room_id"], places))
    return out[0], out[1]


# ---- lots built once per run through the API, copied for each test --------------------------------------------

async def _build_ready(sessions, client, raw_conn, _base, *, prices=None):
    from .session_setup import PRICES, ready_lot
    return await ready_lot(sessions, client, raw_conn, prices=prices or PRICES)


async def _build_ready_tied(sessions, client, raw_conn, _base):
    from .session_setup import TIED_PRICES
    return await _build_ready(sessions, client, raw_conn, None, prices=TIED_PRICES)


async def _build_started(sessions, client, raw_conn, ready):
    from .session_setup import start
    return await start(client, raw_conn, ready)


async def _build_scored(sessions, client, raw_conn, started):
    from .session_setup import score
    return await score(client, started)


async def _build_candidates(sessions, client, raw_conn, scored):
    from .session_setup import publish_candidates
    return await publish_candidates(client, scored)


async def _build_awarded(sessions, client, raw_conn, candidates):
    from .session_setup import award
    return await award(client, raw_conn, candidates)


# fixture name -> (the state it starts from, builder); a test naming one of these fixtures runs on a copy of it
# (tests/integration/lot_states.py)
LOT_STATES = {"ready": (None, _build_ready), "started": ("ready", _build_started), "scored": ("started", _build_scored),
              "candidates": ("scored", _build_candidates), "awarded": ("candidates", _build_awarded),
              "ready_tied": (None, _build_ready_tied), "started_tied": ("ready_tied", _build_started)}

lot_templates, db_url, settings, pytest_collection_modifyitems, _states = fixtures(LOT_STATES, "evaluation-lots")
ready, started, scored, candidates, awarded, started_tied = (
    _states[name] for name in ("ready", "started", "scored", "candidates", "awarded", "started_tied"))
