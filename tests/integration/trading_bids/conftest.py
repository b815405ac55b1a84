"""Building blocks for sealed-bid tests: tenders, lots and registrations made behind the API's back, and
holder keys wrapped once per run (each age scrypt wrap costs ~1.6 s)."""
from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from core import identity_service
from core.identity_models import User
from tests.helpers import Actor, bidder, social_credit_code, staff
from trading import keyholding
from trading.models import HolderKey
from trading.models import BidderRegistration, Lot, Tender

_n = itertools.count(1)
PASSPHRASES = ["holder-one-passphrase", "holder-two-passphrase", "holder-three-passphrase"]


@pytest.fixture(scope="session")
def wrapped_holder_keys() -> list[tuple[str, bytes]]:
    """Three (recipient, wrapped identity) pairs under PASSPHRASES, made once for the whole run."""
    with ProcessPoolExecutor(max_workers=2) as pool:
        return list(pool.map(keyholding.wrap_holder_identity, PASSPHRASES))


@dataclass
class BidTender:
    tender_id: int
    code: str
    lot_id: str
    lot_pk: int
    agent: Actor
    supervision: str  # the supervising organisation's public id (行政监督部门)
    holders: list[Actor] = field(default_factory=list)
    bidders: list[Actor] = field(default_factory=list)


async def org_pk(session, public_id: str) -> int:
    return (await session.execute(text("SELECT id FROM organisation WHERE public_id = :p"),
                                  {"p": public_id})).scalar_one()


async def user_row(session, public_id: str) -> User:
    return (await session.execute(select(User).where(User.public_id == public_id))).scalar_one()


async def enrol(sessions, actor: Actor, pair: tuple[str, bytes]) -> None:
    """Store a pre-wrapped holder key for `actor`, as POST /me/holder-key would."""
    async with sessions() as session, session.begin():
        user = await user_row(session, actor.public_id)
        await keyholding.store_holder_key(session, user, pair[0], pair[1], actor=actor.public_id)


async def draft_tender(sessions, client, *, bidders: int = 3, method: str = "open",
                       platform_share: bool = False) -> BidTender:
    """A draft tender with one lot, an agent, and `bidders` registered bidders (each a signed-in user)."""
    async with sessions() as session, session.begin():
        agency = await identity_service.create_organisation(
            session, actor="system", name=f"中山市第{next(_n)}招标代理有限公司", social_credit_code=social_credit_code())
        tenderer = await identity_service.create_organisation(
            session, actor="system", name=f"中山市第{next(_n)}人民医院", social_credit_code=social_credit_code())
        supervision = await identity_service.create_organisation(
            session, actor="system", name=f"中山市第{next(_n)}公共资源交易监督管理局", social_credit_code=social_credit_code())
        agency_id, tenderer_id, supervision_id = agency.id, tenderer.id, supervision.id
        agency_public, supervision_public = agency.public_id, supervision.public_id
    agent = await staff(sessions, client, "agent", organisation_public_id=agency_public)
    bidder_actors = [await bidder(client) for _ in range(bidders)]
    async with sessions() as session, session.begin():
        agent_user = await user_row(session, agent.public_id)
        seq = next(_n)
        code = f"ZS-2026-FJSZ-9{seq:04d}"
        tender = Tender(code=code, title=f"中山市道路改造工程第{seq}号", family="FJSZ", subtype="FJSZ-SG",
                        method=method, region_code="ZS", status="draft", tenderer_id=tenderer_id,
                        agent_id=agency_id, supervisor_organisation_id=supervision_id, created_by_id=agent_user.id,
                        budget=Decimal("5000000.00"),
                        platform_holds_share=platform_share)
        session.add(tender)
        await session.flush()
        lot = Lot(public_id=f"{code}-L01", tender_id=tender.id, lot_no=1, title="第一标段",
                  budget=Decimal("5000000.00"))
        session.add(lot)
        await session.flush()
        for actor in bidder_actors:
            user = await user_row(session, actor.public_id)
            session.add(BidderRegistration(tender_id=tender.id, lot_id=lot.id, organisation_id=user.organisation_id,
                                           registered_by_id=user.id))
        return BidTender(tender.id, code, lot.public_id, lot.id, agent, supervision_public, [], bidder_actors)


async def add_holders(sessions, client, info: BidTender, pairs, *, k: int = 2, include_agent: bool = True) -> None:
    """Enrol the agent plus supervisors of the tender's supervising organisation as key holders (one pre-wrapped
    key each) and name them k-of-n."""
    holders = [info.agent] if include_agent else []
    while len(holders) < len(pairs):
        holders.append(await staff(sessions, client, "supervisor", organisation_public_id=info.supervision))
    for actor, pair in zip(holders, pairs):
        await enrol(sessions, actor, pair)
    info.holders = holders
    async with sessions() as session, session.begin():
        tender = await session.get(Tender, info.tender_id)
        await keyholding.set_key_holders(session, tender, [h.public_id for h in holders], k,
                                         actor=info.agent.public_id)


async def publish(sessions, info: BidTender, *, deadline_in_s: float = 3600) -> str:
    """Seal and publish the tender with its bid deadline `deadline_in_s` seconds after the DB's now()."""
    async with sessions() as session, session.begin():
        tender = await session.get(Tender, info.tender_id)
        await keyholding.seal_at_publish(session, tender, actor=info.agent.public_id)
        await session.execute(text(
            "UPDATE tender SET status = 'published', published_at = now() - interval '20 days', "
            "clarification_end_at = now() - interval '1 day', "
            "bid_deadline_at = now() + make_interval(secs => :s), opening_at = now() + make_interval(secs => :s) "
            "WHERE id = :i"), {"s": deadline_in_s, "i": info.tender_id})
        return tender.age_recipient


async def set_deadline(sessions, info: BidTender, seconds_from_now: float) -> None:
    async with sessions() as session, session.begin():
        await session.execute(text(
            "UPDATE tender SET bid_deadline_at = now() + make_interval(secs => :s), "
            "opening_at = now() + make_interval(secs => :s) WHERE id = :i"),
            {"s": seconds_from_now, "i": info.tender_id})


async def holder_key_count(sessions) -> int:
    async with sessions() as session:
        return len((await session.execute(select(HolderKey))).scalars().all())


def bundle(price="1234567.89", duration_days=180, declared=None, documents=None) -> bytes:
    """A plain bid bundle with a form and one document."""
    from trading.bundle import make_bundle
    return make_bundle({"price": price, "duration_days": duration_days, "declared": declared or {"质量标准": "合格"}},
                       documents if documents is not None else {"投标函.pdf": b"%PDF-1.7 test document"})


async def upload(client, info: BidTender, actor: Actor, data: bytes, *, lot: str | None = None):
    """PUT the bid; returns (status, json)."""
    resp = await client.put(f"/api/v1/tenders/{info.code}/lots/{lot or info.lot_id}/bid", data=data,
                            headers={**actor.headers, "Content-Type": "application/octet-stream"})
    return resp.status, await resp.json()


async def verify_record(client, record_no: str) -> dict:
    """Download a record and check it with the platform's verifier."""
    pdf = await (await client.get(f"/api/v1/records/{record_no}")).read()
    resp = await client.post("/api/v1/records/verify", data=pdf, headers={"Content-Type": "application/pdf"})
    assert resp.status == 200, await resp.text()
    return await resp.json()
