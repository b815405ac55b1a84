"""Building blocks for sealed-bid tests: tenders drafted through the API and published, registered for and bid on
through the services or the API (only the clock is moved directly), and holder keys wrapped once per run (each
age scrypt wrap costs ~1.6 s)."""
from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from core import identity_service
from core.principal import Principal
from core.identity_models import User
from tests.helpers import Actor, bidder, social_credit_code, staff, submit_share
from tests.integration.lot_states import fixtures
from tests.integration.trading.conftest import draft_body
from trading import keyholding, participation, statutory, tenders
from trading.models import HolderKey
from trading.models import Lot, Tender

_n = itertools.count(1)
PASSPHRASES = ["holder-one-passphrase", "holder-two-passphrase", "holder-three-passphrase"]


_holder_pairs: list[tuple[str, bytes]] = []


def holder_key_pairs() -> list[tuple[str, bytes]]:
    """Three (recipient, wrapped identity) pairs under PASSPHRASES, made once per test process."""
    if not _holder_pairs:
        with ProcessPoolExecutor(max_workers=2) as pool:
            _holder_pairs.extend(pool.map(keyholding.wrap_holder_identity, PASSPHRASES))
    return list(_holder_pairs)


@pytest.fixture(scope="session")
def wrapped_holder_keys() -> list[tuple[str, bytes]]:
    """Three (recipient, wrapped identity) pairs under PASSPHRASES, made once for the whole run."""
    return holder_key_pairs()


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
                       platform_share: bool = False, lots: int = 1, key_threshold: int = 2,
                       key_holder_count: int = 3, agent: Actor | None = None,
                       supervision: str | None = None) -> BidTender:
    """A draft tender drafted through POST /api/v1/tenders (`lots` lots, the first carrying the whole budget but
    1,000,000) by `agent` (default: a new agent of a new agency), supervised by `supervision` (default: a new
    supervising organisation with a supervisor), plus `bidders` signed-in bidder accounts of their own
    organisations; they register for the first lot when `publish` publishes the tender (registration opens with
    publication)."""
    async with sessions() as session, session.begin():
        agency = None if agent else await identity_service.create_organisation(
            session, actor="system", name=f"中山市第{next(_n)}招标代理有限公司", social_credit_code=social_credit_code())
        tenderer = await identity_service.create_organisation(
            session, actor="system", name=f"中山市第{next(_n)}人民医院", social_credit_code=social_credit_code())
        tenderer_public = tenderer.public_id
        supervision_public = supervision
        if supervision_public is None:
            made = await identity_service.create_organisation(
                session, actor="system", name=f"中山市第{next(_n)}公共资源交易监督管理局",
                social_credit_code=social_credit_code())
            supervision_public = made.public_id
            # a tender names a supervising organisation that has supervisors (招标投标法实施条例 第4条)
            await identity_service.create_user(
                session, actor="system", username=f"supervision{next(_n)}", password="not-used-supervisor-1",
                display_name="监督人员", roles=["supervisor"], organisation_public_id=supervision_public)
    agent = agent or await staff(sessions, client, "agent", organisation_public_id=agency.public_id)
    bidder_actors = [await bidder(client) for _ in range(bidders)]
    seq = next(_n)
    lot_list = [{"title": "第一标段", "budget": "5000000.00" if lots == 1 else "4000000.00"}]
    lot_list += [{"title": f"第{i}标段 管网工程", "budget": f"{1000000 // (lots - 1)}.00"} for i in range(2, lots + 1)]
    body = draft_body(tenderer_public, title=f"中山市道路改造工程第{seq}号", days=10, method=method,
                      budget="5000000.00", lots=lot_list, supervisor_organisation=supervision_public,
                      platform_holds_share=platform_share, key_threshold=key_threshold,
                      key_holder_count=key_holder_count)
    resp = await client.post("/api/v1/tenders", json=body, headers=agent.headers)
    assert resp.status == 201, await resp.text()
    code = (await resp.json())["code"]
    async with sessions() as session:
        tender = (await session.execute(select(Tender).where(Tender.code == code))).scalar_one()
        first = (await session.execute(select(Lot).where(Lot.tender_id == tender.id, Lot.lot_no == 1))).scalar_one()
        return BidTender(tender.id, code, first.public_id, first.id, agent, supervision_public, [], bidder_actors)


async def lot_public_id(sessions, info: BidTender, lot_no: int) -> str:
    async with sessions() as session:
        return (await session.execute(select(Lot.public_id).where(Lot.tender_id == info.tender_id,
                                                                  Lot.lot_no == lot_no))).scalar_one()


async def register(sessions, actors: list[Actor], lot_id: str) -> None:
    """投标报名: each bidder registers its organisation for the lot, as POST /lots/{id}/registrations does."""
    for actor in actors:
        async with sessions() as session, session.begin():
            await participation.register_for_lot(session, await as_principal(session, actor), lot_id)


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


async def as_principal(session, actor: Actor) -> Principal:
    """Who `actor` is to the services, as the API's middleware would see them."""
    user = await user_row(session, actor.public_id)
    return Principal(user.id, user.public_id, user.organisation_id, frozenset(user.roles))


async def publish(sessions, info: BidTender, *, deadline_in_s: float = 3600) -> str:
    """Publish the draft through the trading service (the key sealed, the state moved, the ledger written, the
    close job scheduled), as the agent; register the bidders for the first lot; then move the clock: the publication 20 days back, the clarification
    period over, the bid deadline (and its close job) `deadline_in_s` seconds after the DB's now()."""
    async with sessions() as session, session.begin():
        tender = await tenders.publish(session, await as_principal(session, info.agent), info.code,
                                       periods=statutory.RELAXED)
        recipient = tender.age_recipient
    await register(sessions, info.bidders, info.lot_id)
    async with sessions() as session, session.begin():
        await session.execute(text(
            "UPDATE tender SET published_at = now() - interval '20 days', "
            "clarification_end_at = now() - interval '1 day', "
            "bid_deadline_at = now() + make_interval(secs => :s), opening_at = now() + make_interval(secs => :s) "
            "WHERE id = :i"), {"s": deadline_in_s, "i": info.tender_id})
        await session.execute(text(
            "UPDATE scheduled_job SET due_at = now() + make_interval(secs => :s) WHERE dedupe_key = :k "
            "AND status = 'pending'"), {"s": deadline_in_s, "k": tenders.close_job_key(info.tender_id)})
    return recipient


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


async def opened_tender(sessions, client, pairs, *, method: str = "single_source", agent: Actor | None = None,
                        supervision: str | None = None):
    """A tender with three opened bids (the platform's share plus the agent's and a supervisor's), published
    through the service and opened through the API; returns (info, the opened bids by price). `agent` and
    `supervision` as for draft_tender."""
    info = await draft_tender(sessions, client, bidders=3, platform_share=True, method=method, agent=agent,
                              supervision=supervision)
    await add_holders(sessions, client, info, pairs[:2], k=2)
    await publish(sessions, info)
    for actor, price in zip(info.bidders, ("300.00", "200.00", "250.00")):
        assert (await upload(client, info, actor, bundle(price=price)))[0] == 201
    await set_deadline(sessions, info, -1)
    assert (await client.post(f"/api/v1/tenders/{info.code}/opening", headers=info.agent.headers)).status == 200
    for holder, passphrase in zip(info.holders, PASSPHRASES):
        status, body = await submit_share(client, info.code, holder.headers, passphrase)
        assert status == 200, body
    assert body["status"] == "opened"
    bids = (await (await client.get(f"/api/v1/tenders/{info.code}/opened-bids")).json())["bids"]
    return info, sorted(bids, key=lambda b: float(b["price"]))


async def _build_opened_single_source(sessions, client, raw_conn, _base):
    return await opened_tender(sessions, client, holder_key_pairs())


# states built once per run and copied for each test naming the fixture (tests/integration/lot_states.py):
# `opened_single_source` is (info, bids) of `opened_tender`, a single-source tender whose 3 bids are opened
TENDER_STATES = {"opened_single_source": (None, _build_opened_single_source)}
lot_templates, db_url, settings, pytest_collection_modifyitems, _states = fixtures(TENDER_STATES, "trading-bids-states")
opened_single_source = _states["opened_single_source"]


@dataclass
class ServiceTender:
    tender_id: int
    code: str
    lot_id: str
    lot_pk: int


async def service_tender(sessions, agent: Actor, *, tenderer: str, supervisor_org: str, state: str = "published",
                         title: str = "中山市火炬开发区道路改造工程施工", family: str = "FJSZ", subtype: str = "FJSZ-SG",
                         method: str = "open", budget: str = "5000000.00", bid_deadline_days: float = 10,
                         notifier=None) -> ServiceTender:
    """A tender with one lot reached through the trading services as its agent would through the API: drafted
    (`state="draft"`), then with a new colleague of the agent (same agency) and a new supervisor of
    `supervisor_org` as its 2-of-2 key holders (pre-wrapped keys, no scrypt; the acting agent itself enrols no
    key) published with its bid deadline `bid_deadline_days` ahead (`state="published"`), or then cancelled
    (`state="cancelled"`, a final state)."""
    from datetime import datetime, timezone

    from core.notifications import InAppNotifier
    from tests.integration.trading.conftest import EVALUATION
    if state not in ("draft", "published", "cancelled"):
        raise ValueError(f"no service path to {state!r} here")
    now = datetime.now(timezone.utc)
    deadline = now + timedelta(days=bid_deadline_days)
    async with sessions() as session, session.begin():
        # a supervisor of the supervising organisation (行政监督部门), who holds the second key
        holder, _ = await identity_service.create_user(
            session, actor="system", username=f"holder{next(_n)}", password="not-used-holder-1",
            display_name="监督人员", roles=["supervisor"], organisation_public_id=supervisor_org)
        holder_public = holder.public_id
        agency = (await session.execute(text(
            "SELECT o.public_id FROM organisation o JOIN app_user u ON u.organisation_id = o.id "
            "WHERE u.public_id = :u"), {"u": agent.public_id})).scalar_one()
        colleague, _ = await identity_service.create_user(
            session, actor="system", username=f"holder{next(_n)}", password="not-used-holder-1",
            display_name="招标代理", roles=["agent"], organisation_public_id=agency)
        colleague_public = colleague.public_id
    async with sessions() as session, session.begin():
        who = await as_principal(session, agent)
        tender = await tenders.create_tender(session, who, {
            "title": title, "description": "详见招标文件", "tenderer": tenderer, "supervisor_organisation": supervisor_org,
            "region_code": "ZS", "family": family, "subtype": subtype, "method": method, "budget": budget,
            "lots": [{"title": "第一标段", "budget": budget}], "evaluation": EVALUATION,
            "clarification_end_at": now + timedelta(seconds=bid_deadline_days * 43200), "bid_deadline_at": deadline,
            "opening_at": deadline, "key_threshold": 2, "key_holder_count": 2})
        code, tender_id = tender.code, tender.id
        lot = (await session.execute(select(Lot).where(Lot.tender_id == tender.id))).scalar_one()
        lot_id, lot_pk = lot.public_id, lot.id
    if state != "draft":
        pairs = holder_key_pairs()
        async with sessions() as session, session.begin():
            for user_public, pair in ((colleague_public, pairs[0]), (holder_public, pairs[1])):
                await keyholding.store_holder_key(session, await user_row(session, user_public), *pair,
                                                  actor=user_public)
            tender = await session.get(Tender, tender_id)
            await keyholding.set_key_holders(session, tender, [colleague_public, holder_public], 2,
                                             actor=agent.public_id)
        async with sessions() as session, session.begin():
            who = await as_principal(session, agent)
            await tenders.publish(session, who, code, periods=statutory.RELAXED)
            if state == "cancelled":
                await tenders.cancel(session, who, code, "招标计划调整", notifier or InAppNotifier())
    return ServiceTender(tender_id, code, lot_id, lot_pk)
