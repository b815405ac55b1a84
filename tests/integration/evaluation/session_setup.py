"""A lot ready for its evaluation session, reached through the HTTP API alone: a tender made, keyed and published
through the API with 4 sealed bids, a committee of 5 drawn 2 + 3 from Guangzhou and Zhongshan while the bids are
sealed and accepted by every expert, the bids opened by their key holders, the two Guangdong centres with rooms and
places, and the session scheduled at both. Only the clock is moved by hand: the bid deadline is put in the past
(`set_deadline`) rather than waited for.

Tests do not call these directly: lots.py builds each state once per run and conftest.py hands each test a copy
(fixtures `ready`, `started`, `started_tied`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text

from tests.helpers import Actor, bidder, staff, submit_share
from tests.integration.expert_pool.conftest import PoolExpert, employed_experts, sign_in
from tests.integration.trading.conftest import EVALUATION
from tests.integration.trading_bids.conftest import PASSPHRASES, BidTender, bundle, set_deadline, upload

from .conftest import Venue, at, guangdong_centres, post

PRICES = ("4650000.00", "4720000.00", "4580000.00", "4810000.00")
TIED_PRICES = ("4650000.00", "4650000.00", "4580000.00", "4810000.00")
# each bid's documents: a bid letter and a licence in a folder
DOCUMENTS = [{f"投标函-{i}.pdf": f"%PDF-1.7 投标函 of bidder {i}".encode(),
              "资格证明/营业执照.pdf": f"%PDF-1.7 licence of bidder {i} ".encode() * (i + 1)} for i in range(4)]


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
    admin: Actor | None = None
    # two purchasers of the tenderer (the draw planned 2 tenderer representatives; a test may name them or not)
    representatives: list[Actor] = field(default_factory=list)
    outsider: Actor | None = None                                   # a registered bidder with no part in this lot

    @property
    def url(self) -> str:
        return f"/api/v1/evaluation-sessions/{self.session_id}"


async def open_bids(sessions, client, raw_conn, info: BidTender) -> None:
    """The deadline passes and the holders open the bids, through the opening endpoints."""
    await set_deadline(sessions, info, -1)
    await post(client, f"/api/v1/tenders/{info.code}/opening", info.agent, None, 200)
    for holder, passphrase in zip(info.holders[:2], PASSPHRASES):
        status, body = await submit_share(client, info.code, holder.headers, passphrase)
        assert status == 200, body
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


async def start(client, raw_conn, ready: Ready, representatives: list[Actor] = ()) -> Started:
    """The committee formed from the draw with these tenderer representatives (none by default), every member
    checked in, the evaluation started and the chair (the first expert member id) elected by a bare majority of
    the members, all of them experts' votes."""
    url = ready.url
    await post(client, url + "/committee", ready.info.agent,
               {"representatives": [r.public_id for r in representatives]}, 200)
    await post(client, url + "/check-in/open", ready.info.agent, None, 200)
    await check_in_all(client, raw_conn, ready)
    for representative in representatives:
        await post(client, url + "/check-in", representative, {"commitment": True}, 200)
    await post(client, url + "/start", ready.info.agent, None, 200)
    by_member = {m: ready.experts[e] for m, e in (await member_experts(raw_conn, ready.session_id)).items()}
    chair = sorted(by_member)[0]
    for voter in sorted(by_member)[:(len(by_member) + len(representatives)) // 2 + 1]:
        standing = await post(client, url + "/chair/votes", by_member[voter], {"candidate": chair}, 200)
    assert (standing["chair"], standing["how"]) == (chair, "majority")
    bidders = await (await client.get(url + "/declaration", headers=by_member[chair].headers)).json()
    return Started(ready, by_member, chair, bidders)


TECH, RECORD = "技术方案", "项目业绩"   # EVALUATION's criteria: max 40 subjective; max 20 objective


async def score(client, started: Started) -> Started:
    """From a started session to scoring closed: one qualification requirement passed by every bidder, every
    member's sheets submitted alike (no flag is raised), the chair closing the review and then the scoring."""
    url, members_, chair = started.ready.url, started.members, started.members[started.chair]
    bidders = [b["organisation_id"] for b in started.bidders]
    resp = await client.put(url + "/review/requirements", headers=started.ready.info.agent.headers,
                            json={"requirements": [{"code": "Q1", "title": "企业资质", "kind": "qualification"}]})
    assert resp.status == 200, await resp.text()
    for actor in members_.values():
        await post(client, url + "/review/ballots", actor,
                   {"ballots": [{"bidder": x, "requirement": "Q1", "passed": True} for x in bidders]}, 200)
    await post(client, url + "/review/close", chair, None, 200)
    for actor in members_.values():
        for x in bidders:
            resp = await client.put(url + f"/sheets/{x}", headers=actor.headers,
                                    json={"scores": {TECH: "30", RECORD: "18"}, "submit": True})
            assert resp.status == 200, await resp.text()
    closed = await post(client, url + "/scoring/close", chair, None, 200)
    assert closed["status"] == "scoring_closed"
    return started


async def publish_candidates(client, started: Started) -> Started:
    """From scoring closed to the candidates published: the chair issues the report, every member signs it (the
    platform seals it last), and the agent publishes the top 3 with a 3 days' publicity."""
    url, chair = started.ready.url, started.members[started.chair]
    await post(client, url + "/report", chair, None, 201)
    for member in sorted(started.members):
        state = await post(client, url + "/report/signatures", started.members[member], None, 200)
    assert state["sealed"]
    await post(client, url + "/candidates", started.ready.info.agent, {"publicity_days": 3}, 201)
    return started


async def award(client, raw_conn, started: Started) -> Started:
    """From the candidates published to the award: the publicity period passes (the clock moved, not waited
    for) and the agent awards the lot to its first candidate with the signed award notice."""
    await raw_conn.execute("UPDATE award_candidate SET publicity_ends_at = now() - interval '1 second' "
                           "WHERE tender_id = $1", started.ready.info.tender_id)
    await post(client, f"/api/v1/tenders/{started.ready.info.code}/award", started.ready.info.agent, None, 201)
    return started


# ---- the lot reached through the API ----------------------------------------------------------------------------

async def bidding_tender(sessions, client, *, evaluation: dict = EVALUATION, prices=PRICES,
                         documents=DOCUMENTS) -> BidTender:
    """A tender made, keyed and published through the API, with 4 bidders registered and bidding through it at
    these prices, each bid with its documents (`documents[i]`, {name: bytes}).

    Accounts and organisations are created as `bidroom users create` would; the key holders (the agent and a
    supervisor of the supervising organisation) enrol through `POST /api/v1/me/holder-key`, at passphrases
    PASSPHRASES[0] and [1]."""
    from datetime import datetime, timedelta, timezone

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
    for i, (actor, price) in enumerate(zip(bidders, prices)):
        status, body = await upload(client, info, actor, bundle(price=price, documents=documents[i]))
        assert status == 201, body
    return info


async def ready_lot(sessions, client, raw_conn, *, prices=PRICES) -> Ready:
    """From nothing to a lot ready for its session: the bidding tender, the committee of 5 drawn 2 + 3 (with room
    for 2 tenderer representatives) and accepted while the bids are sealed (a new original draw is refused once
    the tender is opened), the bids opened, the two centres built by an admin and the session scheduled at both;
    also two purchasers of the tenderer and an outsider, signed in."""
    admin = await staff(sessions, client, "admin")
    info = await bidding_tender(sessions, client, prices=prices)
    supervisor = next(h for h in info.holders if h is not info.agent)
    tenderer_org = await raw_conn.fetchval("SELECT o.public_id FROM organisation o JOIN tender t "
                                           "ON t.tenderer_id = o.id WHERE t.code = $1", info.code)
    guangzhou_pool = await employed_experts(sessions, 3, specialty="A0101", city="440100", account=True)
    zhongshan_pool = await employed_experts(sessions, 4, specialty="A0101", city="442000", account=True)
    pool = {e.expert_id: e for e in guangzhou_pool + zhongshan_pool}
    experts = {e.expert_id: await sign_in(client, e.username) for e in pool.values()}
    draw = await post(client, f"/api/v1/lots/{info.lot_id}/draws", info.agent, {
        "session_at": at(5, 9), "venue": "中山市公共资源交易中心（主场）、广东省公共资源交易中心（副场）",
        "representatives": 2,
        "quotas": [{"name": "广州", "specialty": "A01", "region": "440100", "count": 2, "backups": 1},
                   {"name": "中山", "specialty": "A01", "region": "442000", "count": 3, "backups": 1}]}, 201)
    drawn = await post(client, f"/api/v1/draws/{draw['draw_id']}/entropy", supervisor,
                       {"entropy": "9c4e2a7b1d3f5e6a8b0c2d4e6f708192"}, 200)
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
    representatives = [await staff(sessions, client, "purchaser", organisation_public_id=tenderer_org)
                       for _ in range(2)]
    return Ready(info, supervisor, guangzhou, zhongshan, created["session_id"], draw["draw_id"], experts, pool,
                 backups, tenderer_org, admin, representatives, await bidder(client))


async def started_session(sessions, client, raw_conn, wrapped_holder_keys=None, admin: Actor | None = None) -> Started:
    """`ready_lot` then `start`, in the caller's own database, for tests outside this package that cannot name the
    `started` fixture (the media timeline). The pre-wrapped holder keys and the admin of earlier versions are
    no longer needed: the holders enrol through the API and ready_lot signs in its own admin."""
    return await start(client, raw_conn, await ready_lot(sessions, client, raw_conn))
