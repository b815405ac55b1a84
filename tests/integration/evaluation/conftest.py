"""Building blocks for venue tests: signed-in staff, the two Guangdong centres made over HTTP, tenders with a lot
made behind the API's back (tenders are another domain), and times for bookings."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from core import identity_service
from core.identity_models import User
from tests.helpers import Actor, social_credit_code, staff
from trading.models import Lot, Tender

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


async def tender_with_lot(sessions, agent: Actor, *, status: str = "opened") -> TenderRef:
    """A tender with one lot managed by `agent`, supervised by a new organisation."""
    tenderer = await organisation(sessions, f"中山市第{next(_n)}人民医院")
    supervisor_org = await organisation(sessions, f"中山市住房和城乡建设局{next(_n)}科")
    async with sessions() as session, session.begin():
        agent_pk = (await session.execute(select(User.id).where(User.public_id == agent.public_id))).scalar_one()

        async def org_pk(public_id: str) -> int:
            return (await session.execute(text("SELECT id FROM organisation WHERE public_id = :p"),
                                          {"p": public_id})).scalar_one()

        code = f"ZS-2026-FJSZ-{next(_n) + 500:05d}"
        tender = Tender(code=code, title="中山市火炬开发区道路改造工程施工", family="FJSZ", subtype="FJSZ-SG",
                        method="open", region_code="ZS", status=status, tenderer_id=await org_pk(tenderer),
                        supervisor_organisation_id=await org_pk(supervisor_org), created_by_id=agent_pk,
                        budget=Decimal("5000000.00"))
        session.add(tender)
        await session.flush()
        lot = Lot(public_id=f"{code}-L01", tender_id=tender.id, lot_no=1, title="第一标段", budget=Decimal("5000000.00"))
        session.add(lot)
        return TenderRef(code, lot.public_id, supervisor_org)


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
