"""A lot ready for its evaluation session, reached through the other domains' own test helpers and HTTP:
a tender with 4 sealed bids (tests/integration/trading_bids), a committee of 5 drawn 2 + 3 from Guangzhou and
Zhongshan while the bids are sealed and accepted by every expert (tests/integration/expert_pool), the bids
opened, the two Guangdong centres with rooms and places, and the session scheduled at both.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import text

from tests.helpers import Actor, staff
from tests.integration.expert_pool.conftest import PoolExpert, employed_experts, organisation, sign_in
from tests.integration.trading_bids.conftest import (PASSPHRASES, BidTender, add_holders, bundle, draft_tender,
                                                     publish, set_deadline, upload)

from .conftest import Venue, at, guangdong_centres, post

PRICES = ("4650000.00", "4720000.00", "4580000.00", "4810000.00")


@dataclass
class Ready:
    info: BidTender
    supervisor: Actor
    guangzhou: Venue
    zhongshan: Venue
    session_id: str
    draw_id: str
    experts: dict[str, Actor] = field(default_factory=dict)        # expert public id -> signed-in expert
    pool: dict[str, PoolExpert] = field(default_factory=dict)
    backups: dict[str, str] = field(default_factory=dict)          # quota -> backup expert public id
    tenderer_org: str = ""

    @property
    def url(self) -> str:
        return f"/api/v1/evaluation-sessions/{self.session_id}"


async def bidding_tender(sessions, client, wrapped_holder_keys, prices=PRICES, documents=None) -> BidTender:
    """A published tender with 4 sealed bids at these prices, its deadline not yet passed; `documents`, when
    given, holds each bid's documents ({name: bytes}, one dict per bid)."""
    info = await draft_tender(sessions, client, bidders=4)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    await publish(sessions, info)
    for i, (bidder, price) in enumerate(zip(info.bidders, prices)):
        status, body = await upload(client, info, bidder,
                                    bundle(price=price, documents=documents[i] if documents else None))
        assert status == 201, body
    return info


async def open_bids(sessions, client, raw_conn, info: BidTender) -> None:
    """The deadline passes and the holders open the bids, through the opening endpoints."""
    await set_deadline(sessions, info, -1)
    await post(client, f"/api/v1/tenders/{info.code}/opening", info.agent, None, 200)
    for holder, passphrase in zip(info.holders[:2], PASSPHRASES):
        await post(client, f"/api/v1/tenders/{info.code}/opening/shares", holder, {"passphrase": passphrase}, 200)
    assert await raw_conn.fetchval("SELECT status FROM tender WHERE code = $1", info.code) == "opened"


async def accept_invitations(client, experts: dict[str, Actor]) -> list[str]:
    """Every pending invitation of these experts accepted through the pool's endpoint; returns who accepted."""
    accepted = []
    for expert_id, actor in experts.items():
        mine = await (await client.get("/api/v1/me/invitations", headers=actor.headers)).json()
        for invitation in mine:
            if invitation["status"] == "pending":
                await post(client, f"/api/v1/invitations/{invitation['invitation_id']}/accept", actor, None, 200)
                accepted.append(expert_id)
    return accepted


async def ready_lot(sessions, client, raw_conn, wrapped_holder_keys, admin: Actor, *,
                    representatives: int = 0, prices=PRICES, documents=None) -> Ready:
    # the committee is drawn while the bids are sealed (a new original draw is refused once the tender is
    # opened), by a supervisor of the tender's supervising organisation; the bids are opened afterwards
    info = await bidding_tender(sessions, client, wrapped_holder_keys, prices, documents)
    supervisor_org = await raw_conn.fetchval(
        "SELECT o.public_id FROM organisation o JOIN tender t ON t.supervisor_organisation_id = o.id "
        "WHERE t.code = $1", info.code)
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=supervisor_org)
    tenderer_org = await raw_conn.fetchval("SELECT o.public_id FROM organisation o JOIN tender t "
                                           "ON t.tenderer_id = o.id WHERE t.code = $1", info.code)

    guangzhou_pool = await employed_experts(sessions, 3, specialty="A0101", city="440100", account=True)
    zhongshan_pool = await employed_experts(sessions, 4, specialty="A0101", city="442000", account=True)
    pool = {e.expert_id: e for e in guangzhou_pool + zhongshan_pool}
    experts = {e.expert_id: await sign_in(client, e.username) for e in pool.values()}
    draw = await post(client, f"/api/v1/lots/{info.lot_id}/draws", info.agent, {
        "session_at": at(5, 9), "venue": "中山市公共资源交易中心（主场）、广东省公共资源交易中心（副场）",
        "representatives": representatives,
        "quotas": [{"name": "广州", "specialty": "A01", "region": "440100", "count": 2, "backups": 1},
                   {"name": "中山", "specialty": "A01", "region": "442000", "count": 3, "backups": 1}]}, 201)
    drawn = await post(client, f"/api/v1/draws/{draw['draw_id']}/entropy", supervisor,
                       {"entropy": "5e1f0c2a9b7d4e3f8a6b1c2d3e4f5061"}, 200)
    backups = {r["quota"]: r["backups"][0]["expert_id"] for r in drawn["result"]}
    assert len(await accept_invitations(client, experts)) == 5
    assert await raw_conn.fetchval("SELECT status FROM expert_draw WHERE public_id = $1", draw["draw_id"]) == "formed"
    await open_bids(sessions, client, raw_conn, info)

    guangzhou, zhongshan = await guangdong_centres(client, admin)
    body = {"tender": info.code, "label": "第一标段评标"}
    main = await post(client, f"/api/v1/rooms/{zhongshan.room}/bookings", info.agent,
                      {**body, "starts_at": at(5, 9), "ends_at": at(5, 17), "lot": info.lot_id}, 201)
    sub = await post(client, f"/api/v1/rooms/{guangzhou.room}/bookings", info.agent,
                     {**body, "starts_at": at(5, 8), "ends_at": at(5, 18)}, 201)
    created = await post(client, f"/api/v1/lots/{info.lot_id}/evaluation-sessions", info.agent,
                         {"main_booking": main["booking_id"], "sub_bookings": [sub["booking_id"]]}, 201)
    return Ready(info, supervisor, guangzhou, zhongshan, created["session_id"], draw["draw_id"], experts, pool,
                 backups, tenderer_org)


async def id_card_last4(raw_conn, expert_id: str) -> str:
    """What the expert knows of their own ID card."""
    return (await raw_conn.fetchval("SELECT id_card_no FROM expert WHERE public_id = $1", expert_id))[-4:]


async def member_experts(raw_conn, session_id: str) -> dict[str, str]:
    """member id -> expert public id, for the members still on the committee (what the expert knows: it is them)."""
    rows = await raw_conn.fetch(
        "SELECT m.public_id AS member, e.public_id AS expert FROM evaluation_member m JOIN expert e "
        "ON e.id = m.expert_id JOIN evaluation_session s ON s.id = m.session_id "
        "WHERE s.public_id = $1 AND m.status <> 'withdrawn'", session_id)
    return {r["member"]: r["expert"] for r in rows}


async def committee(client, ready: Ready, actor: Actor) -> dict:
    resp = await client.get(ready.url + "/committee", headers=actor.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def check_in_all(client, raw_conn, ready: Ready, only: list[str] | None = None) -> None:
    """Every expert member still on the committee (or those of `only`) checks in with no conflict."""
    for member, expert_id in (await member_experts(raw_conn, ready.session_id)).items():
        if only is not None and expert_id not in only:
            continue
        await post(client, ready.url + "/check-in", ready.experts[expert_id],
                   {"id_card_last4": await id_card_last4(raw_conn, expert_id), "commitment": True, "conflicts": []},
                   200)


@dataclass
class Started:
    ready: Ready
    members: dict[str, Actor]        # member id -> signed-in expert
    chair: str                       # member id
    bidders: list[dict]              # [{"organisation_id", "name"}], by name


async def started_session(sessions, client, raw_conn, wrapped_holder_keys, admin: Actor,
                          evaluation: dict | None = None, prices=PRICES, documents=None) -> Started:
    """A session of 5 experts, all checked in, the evaluation started and the chair elected by majority.

    `evaluation`, when given, is the tender's evaluation method (评标办法), set directly: the tender was made
    by trading's test helper without one, and the method belongs to trading's tender."""
    ready = await ready_lot(sessions, client, raw_conn, wrapped_holder_keys, admin, prices=prices,
                            documents=documents)
    if evaluation is not None:
        await raw_conn.execute("UPDATE tender SET evaluation = $1::jsonb WHERE code = $2", json.dumps(evaluation),
                               ready.info.code)
    url = ready.url
    await post(client, url + "/committee", ready.info.agent, {}, 200)
    await post(client, url + "/check-in/open", ready.info.agent, None, 200)
    await check_in_all(client, raw_conn, ready)
    await post(client, url + "/start", ready.info.agent, None, 200)
    by_member = {m: ready.experts[e] for m, e in (await member_experts(raw_conn, ready.session_id)).items()}
    chair = sorted(by_member)[0]
    for voter in sorted(by_member)[:3]:
        standing = await post(client, url + "/chair/votes", by_member[voter], {"candidate": chair}, 200)
    assert (standing["chair"], standing["how"]) == (chair, "majority")
    bidders = await (await client.get(url + "/declaration", headers=by_member[chair].headers)).json()
    return Started(ready, by_member, chair, bidders)


# ---- the same lot reached through the API alone --------------------------------------------------------------

async def api_bidding_tender(sessions, client, *, evaluation: dict, prices=PRICES) -> BidTender:
    """A tender made, keyed and published through the API, with 4 bidders registered and bidding through it.

    Accounts and organisations are created as `bidroom users create` would; the key holders (the agent and a
    supervisor of the supervising organisation) enrol through `POST /api/v1/me/holder-key`, at passphrases
    PASSPHRASES[0] and [1]."""
    from datetime import datetime, timedelta, timezone

    from tests.helpers import bidder
    from tests.integration.trading.conftest import organisation as trading_organisation

    agency = await trading_organisation(sessions, "广东中诚招标代理有限公司")
    tenderer = await trading_organisation(sessions, "中山市人民医院")
    supervision = await trading_organisation(sessions, "中山市公共资源交易监督管理局")
    agent = await staff(sessions, client, "agent", organisation_public_id=agency)
    holder = await staff(sessions, client, "supervisor", organisation_public_id=supervision)
    for actor, passphrase in ((agent, PASSPHRASES[0]), (holder, PASSPHRASES[1])):
        await post(client, "/api/v1/me/holder-key", actor, {"passphrase": passphrase}, 201)
    now = datetime.now(timezone.utc)
    draft = await post(client, "/api/v1/tenders", agent, {
        "title": "中山市人民医院门诊楼改造工程施工", "description": "详见招标文件", "tenderer": tenderer,
        "supervisor_organisation": supervision, "region_code": "ZS", "family": "FJSZ", "subtype": "FJSZ-SG",
        "method": "open", "budget": "5000000.00", "lots": [{"title": "第一标段", "budget": "5000000.00"}],
        "evaluation": evaluation, "clarification_end_at": (now + timedelta(minutes=30)).isoformat(),
        "bid_deadline_at": (now + timedelta(hours=2)).isoformat(), "opening_at": (now + timedelta(hours=2)).isoformat(),
        "key_threshold": 2, "key_holder_count": 2}, 201)
    code, lot_id = draft["code"], draft["lots"][0]["lot_id"]
    resp = await client.put(f"/api/v1/tenders/{code}/key-holders", headers=agent.headers,
                            json={"holders": [agent.public_id, holder.public_id], "threshold": 2})
    assert resp.status == 200, await resp.text()
    await post(client, f"/api/v1/tenders/{code}/publish", agent, None, 200)
    bidders = [await bidder(client) for _ in prices]
    for actor in bidders:
        await post(client, f"/api/v1/lots/{lot_id}/registrations", actor, None, 201)
    async with sessions() as session:
        tender_id, lot_pk = (await session.execute(text(
            "SELECT t.id, l.id FROM tender t JOIN lot l ON l.tender_id = t.id WHERE l.public_id = :l"),
            {"l": lot_id})).one()
    info = BidTender(tender_id, code, lot_id, lot_pk, agent, supervision, [agent, holder], bidders)
    for actor, price in zip(bidders, prices):
        status, body = await upload(client, info, actor, bundle(price=price))
        assert status == 201, body
    return info


async def ready_lot_for(sessions, client, raw_conn, admin: Actor, info: BidTender) -> Ready:
    """`ready_lot` from a bidding tender on: the committee of 5 drawn 2 + 3 and accepted, the bids opened, the two
    centres and the session scheduled at both. The bid deadline is the one thing moved by hand: a test cannot
    wait for it (`set_deadline`); every state changes through the API."""
    supervisor = next(h for h in info.holders if h is not info.agent)
    tenderer_org = await raw_conn.fetchval("SELECT o.public_id FROM organisation o JOIN tender t "
                                           "ON t.tenderer_id = o.id WHERE t.code = $1", info.code)
    guangzhou_pool = await employed_experts(sessions, 3, specialty="A0101", city="440100", account=True)
    zhongshan_pool = await employed_experts(sessions, 4, specialty="A0101", city="442000", account=True)
    pool = {e.expert_id: e for e in guangzhou_pool + zhongshan_pool}
    experts = {e.expert_id: await sign_in(client, e.username) for e in pool.values()}
    draw = await post(client, f"/api/v1/lots/{info.lot_id}/draws", info.agent, {
        "session_at": at(5, 9), "venue": "中山市公共资源交易中心（主场）、广东省公共资源交易中心（副场）",
        "representatives": 0,
        "quotas": [{"name": "广州", "specialty": "A01", "region": "440100", "count": 2, "backups": 1},
                   {"name": "中山", "specialty": "A01", "region": "442000", "count": 3, "backups": 1}]}, 201)
    drawn = await post(client, f"/api/v1/draws/{draw['draw_id']}/entropy", supervisor,
                       {"entropy": "9c4e2a7b1d3f5e6a8b0c2d4e6f708192"}, 200)
    backups = {r["quota"]: r["backups"][0]["expert_id"] for r in drawn["result"]}
    assert len(await accept_invitations(client, experts)) == 5
    await open_bids(sessions, client, raw_conn, info)

    guangzhou, zhongshan = await guangdong_centres(client, admin)
    body = {"tender": info.code, "label": "第一标段评标"}
    main = await post(client, f"/api/v1/rooms/{zhongshan.room}/bookings", info.agent,
                      {**body, "starts_at": at(5, 9), "ends_at": at(5, 17), "lot": info.lot_id}, 201)
    sub = await post(client, f"/api/v1/rooms/{guangzhou.room}/bookings", info.agent,
                     {**body, "starts_at": at(5, 8), "ends_at": at(5, 18)}, 201)
    created = await post(client, f"/api/v1/lots/{info.lot_id}/evaluation-sessions", info.agent,
                         {"main_booking": main["booking_id"], "sub_bookings": [sub["booking_id"]]}, 201)
    return Ready(info, supervisor, guangzhou, zhongshan, created["session_id"], draw["draw_id"], experts, pool,
                 backups, tenderer_org)
