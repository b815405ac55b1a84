"""Building blocks for tender tests: an agent with its agency, tenderers, drafts made over HTTP, key holders."""
from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core import identity_service
from core.identity_models import User
from tests.helpers import Actor, social_credit_code, staff
from trading.models import Tender

_n = itertools.count(1)
HAS_KEYHOLDING = importlib.util.find_spec("trading.keyholding") is not None

EVALUATION = {"method": "comprehensive", "criteria": [
    {"name": "技术方案", "max": "40", "objective": False}, {"name": "项目业绩", "max": "20", "objective": True}],
    "price_weight": "40", "price_formula": {"rule": "lowest_price"}}


async def organisation(sessions, name: str | None = None) -> str:
    """A new organisation; returns its public id."""
    async with sessions() as session, session.begin():
        org = await identity_service.create_organisation(
            session, actor="system", name=name or f"测试单位{next(_n)}有限公司", social_credit_code=social_credit_code())
        return org.public_id


@dataclass
class Desk:
    """An agency desk: the agent, its agency, a default tenderer and the supervising organisation (行政监督部门)
    with one supervisor."""

    agent: Actor
    agency: str
    tenderer: str
    holders: list[str]
    supervision: str = ""
    supervisor: Actor | None = None


def draft_body(tenderer: str, title: str = "中山市火炬开发区道路改造工程施工", days: float = 30,
               **changes) -> dict:
    now = datetime.now(timezone.utc)
    body = {"title": title, "description": "详见招标文件", "tenderer": tenderer, "region_code": "ZS",
            "family": "FJSZ", "subtype": "FJSZ-SG", "method": "open", "budget": "12345678.90",
            "lots": [{"title": "第一标段 道路", "budget": "8000000.00"},
                     {"title": "第二标段 管网", "budget": "4345678.90"}],
            "evaluation": EVALUATION,
            "clarification_end_at": (now + timedelta(days=days - 5)).isoformat(),
            "bid_deadline_at": (now + timedelta(days=days)).isoformat(),
            "opening_at": (now + timedelta(days=days)).isoformat(),  # 招标投标法 第34条: at the deadline
            "key_threshold": 2, "key_holder_count": 3}
    body.update(changes)
    return body


async def _holders(sessions, actors) -> list[str]:
    """The agent and the supervisor of the desk as enrolled key holders: two people of two organisations (with
    throwaway keys: these tests never open bids)."""
    if not HAS_KEYHOLDING:
        return []
    import pyrage

    from trading import keyholding
    out = []
    for actor in actors:
        async with sessions() as session, session.begin():
            user = (await session.execute(select(User).where(User.public_id == actor.public_id))).scalar_one()
            recipient = str(pyrage.x25519.Identity.generate().to_public())
            await keyholding.store_holder_key(session, user, recipient, b"unused in these tests", actor="system")
        out.append(actor.public_id)
    return out


@pytest.fixture
async def desk(sessions, client) -> Desk:
    agency = await organisation(sessions, "广东中诚招标代理有限公司")
    agent = await staff(sessions, client, "agent", organisation_public_id=agency)
    tenderer = await organisation(sessions, "广东省交通运输厅直属工程处")
    supervision = await organisation(sessions, "广东省公共资源交易监督管理局")
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=supervision)
    return Desk(agent, agency, tenderer, [], supervision, supervisor)  # key holders are made on the first publish


async def prepare_keys(client, sessions, desk: Desk, code: str) -> None:
    """Name the tender's key holders the way the sealing module wants them before publish."""
    if not HAS_KEYHOLDING:
        return
    from trading import keyholding
    if not desk.holders:
        desk.holders = await _holders(sessions, [desk.agent, desk.supervisor])
    async with sessions() as session, session.begin():
        tender = (await session.execute(select(Tender).where(Tender.code == code))).scalar_one()
        await keyholding.set_key_holders(session, tender, desk.holders, 2, actor="system")


async def create_draft(client, desk: Desk, **kw) -> dict:
    kw.setdefault("tenderer", desk.tenderer)
    kw.setdefault("supervisor_organisation", desk.supervision)
    resp = await client.post("/api/v1/tenders", json=draft_body(**kw), headers=desk.agent.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def publish(client, sessions, desk: Desk, code: str) -> dict:
    await prepare_keys(client, sessions, desk, code)
    resp = await client.post(f"/api/v1/tenders/{code}/publish", headers=desk.agent.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def published_tender(client, sessions, desk: Desk, **kw) -> dict:
    draft = await create_draft(client, desk, **kw)
    return await publish(client, sessions, desk, draft["code"])
