"""The object-level authorization matrix, generated from the route table.

Two organisations' worlds are built side by side (A and B), each with every kind of object a path names (see
build_side): a published tender with its document, clarification and registered bidder; a draft; the lot's draw,
its records and invitations; a site, room, place and booking; the lot's evaluation session with its committee (the
acting expert on it) and a recording segment; an expert's leave; an enrolment link; another tender of the agent's
with an opened bid and an objection (single source: its candidates are entered by the agent, no committee sits).
No row is written directly: every object comes from the API, or from a background process's own service step.
Every path parameter of the document must be filled with a real object of each side, or the test fails: a route
with a new kind of id cannot ship until the sides make one. Every operation of the OpenAPI document is then
called as every role of side A (and anonymously, and as the platform admin) on side A's object ("own") and on
side B's ("other"), and the outcome is compared with EXPECTED, the one table of who may reach what:

- "allow": the route's handler acted on the object (any answer but 401/403/404, and never a 5xx);
- "deny": 401, 403 or 404, the object unreachable.

An operation of the document missing from EXPECTED fails the test, so a new route cannot ship without its row.
Writes are called after every read, strangers before owners, with a body built from the request schema.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import asyncpg

from core.db import asyncpg_dsn
from core.ids import public_id
from evaluation.media import recorder
from tests.helpers import Actor, bidder, staff
from tests.integration.expert_pool.conftest import (add_expert, organisation, sign_in, supervising_org,
                                                    tender_with_lot)
from tests.integration.test_draw_confidentiality_matrix import example
from tests.integration.trading_bids.conftest import bundle, holder_key_pairs, opened_tender
from web.keys import SCHEDULER

ROLES = ("anonymous", "admin", "agent", "bidder", "expert", "supervisor")
READING = {"get", "head"}
DENIED = {401, 403, 404}
READERS = 6   # reading calls in flight at once


@dataclass
class Side:
    """One organisation's world."""
    actors: dict[str, Actor | None]
    ids: dict[str, str] = field(default_factory=dict)   # path parameter -> this side's object


def later(days: int, hour: int) -> str:
    day = datetime.now(timezone.utc).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc).isoformat()


async def post(client, url: str, actor: Actor, body: dict | None = None, status: int = 201) -> dict:
    resp = await client.post(url, headers=actor.headers, json=body)
    data = await resp.json()
    assert resp.status == status, (url, data)
    return data


async def build_side(client, sessions, db_url: str, name: str, admin: Actor, specialty: str,
                     scheduler_turn: asyncio.Lock) -> Side:
    raw_conn = await asyncpg.connect(**asyncpg_dsn(db_url))   # one of its own: the sides are built side by side
    try:
        return await _build_side(client, sessions, raw_conn, name, admin, specialty, scheduler_turn)
    finally:
        await raw_conn.close()


async def _build_side(client, sessions, raw_conn, name: str, admin: Actor, specialty: str,
                      scheduler_turn: asyncio.Lock) -> Side:
    """A side's world, every object reached through the API or, where only a background process makes it, that
    process's own service step: a published tender with a registered bidder, a clarification and a document; a
    draft; the lot's draw from the side's own pool of experts (`specialty` keeps the two pools apart), its records
    and invitations, all accepted; a site, room and place booked for the lot's evaluation session, its committee
    and a recording segment (the recorder's step); the acting expert's leave; an enrolment link; and a
    single-source tender of the same agent whose bids are opened, its candidates published and objected to (the
    opened bid and the objection). The acting expert sits on the committee."""
    agency = await organisation(sessions, f"中山市{name}招标代理有限公司")
    supervising = await organisation(sessions, f"中山市{name}监督办公室")
    agent = await staff(sessions, client, "agent", organisation_public_id=agency)
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=supervising)
    # supervised by the side's own supervisors
    tender = await tender_with_lot(sessions, agent, supervisor_org=supervising)
    draft = await tender_with_lot(sessions, agent, status="draft", supervisor_org=supervising)
    someone = await bidder(client)
    await post(client, f"/api/v1/lots/{tender.lot_id}/registrations", someone)
    # its sealed bid, uploaded as a bidder does: a bidder of this tender (the objection route's gate)
    resp = await client.put(f"/api/v1/tenders/{tender.code}/lots/{tender.lot_id}/bid", data=bundle(),
                            headers={**someone.headers, "Content-Type": "application/octet-stream"})
    assert resp.status == 201, await resp.text()
    clarification = (await post(client, f"/api/v1/tenders/{tender.code}/clarifications", someone,
                                {"question": f"{name}的问题：工期能否顺延？"}))["clarification_id"]
    resp = await client.post(f"/api/v1/tenders/{tender.code}/documents", data=b"%PDF-1.7\n%matrix\n",
                             params={"filename": "招标文件.pdf"},
                             headers={**agent.headers, "Content-Type": "application/octet-stream"})
    assert resp.status == 201, await resp.text()
    document = (await resp.json())["document_id"]

    pool = [await add_expert(sessions, specialty=specialty, employer=await organisation(sessions), account=True)
            for _ in range(5)]
    draw = await post(client, f"/api/v1/lots/{tender.lot_id}/draws", agent, {
        "session_at": later(3, 9), "venue": f"{name} 矩阵评标室",
        "quotas": [{"name": "土建", "specialty": specialty, "count": 5, "backups": 0}]})
    drawn = await post(client, f"/api/v1/draws/{draw['draw_id']}/entropy", supervisor, {"entropy": name}, 200)
    async with scheduler_turn:   # the draw's record PDFs, made by the scheduler (the other side's too, if due)
        await client.server.app[SCHEDULER].run_due()
    by_id = {e.expert_id: e for e in pool}
    invited = [i for i in drawn["invitations"]]
    experts = {i["expert_id"]: await sign_in(client, by_id[i["expert_id"]].username) for i in invited}
    for i in invited:
        await post(client, f"/api/v1/invitations/{i['invitation_id']}/accept", experts[i["expert_id"]], None, 200)
    expert_id = invited[0]["expert_id"]
    records = [r["record_no"] for r in (await (await client.get(
        f"/api/v1/draws/{draw['draw_id']}", headers=supervisor.headers)).json())["records"]]
    assert records, f"side {name}: the draw has no record"

    site = await post(client, "/api/v1/sites", admin, {"name": f"{name}交易中心", "region_code": "442000"})
    room = await post(client, f"/api/v1/sites/{site['site_id']}/rooms", admin, {"name": "远程异地评标室"})
    place = await post(client, f"/api/v1/rooms/{room['room_id']}/places", admin, {"label": "A-01"})
    device = await post(client, f"/api/v1/sites/{site['site_id']}/devices", admin, {"name": f"{name} 全景摄像机"})
    booking = await post(client, f"/api/v1/rooms/{room['room_id']}/bookings", agent, {
        "starts_at": later(3, 8), "ends_at": later(3, 18), "label": "第一标段评标", "tender": tender.code,
        "lot": tender.lot_id})
    session = await post(client, f"/api/v1/lots/{tender.lot_id}/evaluation-sessions", agent,
                         {"main_booking": booking["booking_id"]})
    session_id = session["session_id"]
    await post(client, f"/api/v1/evaluation-sessions/{session_id}/committee", agent, {}, 200)
    member = await raw_conn.fetchval(
        "SELECT m.public_id FROM evaluation_member m JOIN evaluation_session s ON s.id = m.session_id "
        "WHERE s.public_id = $1 ORDER BY m.id LIMIT 1", session_id)
    leave = await post(client, "/api/v1/me/expert/leave", experts[expert_id],
                       {"starts_at": later(20, 0), "ends_at": later(21, 0)})
    enrolment = await post(client, "/api/v1/admin/enrolments", admin, {
        "username": f"matrix_{name.lower()}_{secrets.token_hex(3)}", "display_name": f"{name} 新代理",
        "roles": ["agent"], "organisation_id": agency})

    # an opened bid and an objection belong to later states than this world's published tender: the side's agent
    # runs a single-source tender of its own (no committee: the agent enters the candidates, 招标投标法实施条例
    # 第54条 objections follow) through the API, its 3 bids opened by their key holders, the candidates published
    # and an objection filed by its losing bidder
    info, opened = await opened_tender(sessions, client, holder_key_pairs(), agent=agent, supervision=supervising)
    await post(client, f"/api/v1/tenders/{info.code}/candidates", agent, {"candidates": [
        {"lot": info.lot_id, "bid": b["bid"], "rank": i + 1} for i, b in enumerate(opened)]})
    loser = info.bidders[0]   # its bid of 300.00 is ranked last
    objection = (await post(client, f"/api/v1/tenders/{info.code}/objections", loser,
                            {"body": f"{name}的异议：第一名的工期不符合招标文件要求。"}))["objection"]
    bid = opened[0]["bid"]
    # a recording segment of the session, opened through the recorder's own step (the media plane writes those)
    segment = public_id("SG", 6)
    es = await raw_conn.fetchrow("SELECT id FROM evaluation_session WHERE public_id = $1", session_id)
    place_pk = await raw_conn.fetchval("SELECT id FROM venue_place WHERE public_id = $1", place["place_id"])
    async with sessions() as db, db.begin():
        await recorder.segment_opened(
            db, recorder.PublicationRef(es["id"], session_id, place_pk, place["place_id"], None, "system", 1),
            segment_id=segment, seq=1, storage_key=f"{session_id}/{place['place_id']}/0001-00001.webm",
            started_at=datetime.now(timezone.utc), recorder="web")
    org_pk = await raw_conn.fetchval("SELECT organisation_id FROM app_user WHERE public_id = $1", someone.public_id)
    bidder_org = await raw_conn.fetchval("SELECT public_id FROM organisation WHERE id = $1", org_pk)

    side = Side({"agent": agent, "supervisor": supervisor, "bidder": someone, "expert": experts[expert_id]})
    side.ids = {"code": tender.code, "draft": draft.code, "lot_id": tender.lot_id, "lot": tender.lot_id,
                "clarification_id": str(clarification), "expert_id": expert_id, "user_id": someone.public_id,
                "organisation_id": bidder_org, "document_id": document, "draw_id": draw["draw_id"],
                "invitation_id": invited[0]["invitation_id"], "record_no": records[0], "site_id": site["site_id"],
                "room_id": room["room_id"], "place_id": place["place_id"], "booking_id": booking["booking_id"],
                "session_id": session_id, "member_id": member, "bid_id": bid, "n": "1", "bidder": bidder_org,
                "segment_id": segment, "objection": objection, "leave_id": str(leave["leave_id"]),
                "enrolment_id": enrolment["enrolment_id"], "device_id": device["device"]["device_id"],
                "credential_id": device["credential_id"]}
    return side


# Who reaches what, one row per operation: the roles (by letter, LETTERS) whose call is not refused, on side A's
# object ("own") and side B's ("other"), then, where the path takes a tender code, on each side's draft.
# "*": everyone, anonymous included. "?": not judged here, the answer depends on the body's credentials alone (sign-in,
# tokens, enrolment links, passwords). Every id in a path is a real object of its side (build_side), so "other"
# is always a real object of another tender, organisation or session: an agent of tender A on tender B's draws,
# sessions and bookings, a bidder on another bidder's bid and objection, an expert of session A on session B, a
# supervisor of A's tender on B's.
EXPECTED: dict[str, tuple[str, ...]] = {
    'POST /api/v1/admin/enrolments': ('a', 'a'),
    'DELETE /api/v1/admin/enrolments/{enrolment_id}': ('a', 'a'),
    'PUT /api/v1/admin/experts/{expert_id}/account': ('a', 'a'),
    'POST /api/v1/admin/experts/{expert_id}/enrolment': ('a', 'a'),
    'POST /api/v1/admin/organisations': ('a', 'a'),
    'POST /api/v1/admin/users': ('a', 'a'),
    'GET /api/v1/admin/users': ('a', 'a'),
    'POST /api/v1/admin/users/{user_id}/enrolment': ('a', 'a'),
    'POST /api/v1/admin/users/{user_id}/revoke-sessions': ('a', 'a'),
    'GET /api/v1/audit/checkpoint': ('*', '*'),
    'POST /api/v1/audit/checkpoint': ('as', 'as'),
    'GET /api/v1/audit/entries': ('as', 'as'),
    'POST /api/v1/auth/login': ('?', '?'),
    'POST /api/v1/auth/logout': ('?', '?'),
    'POST /api/v1/auth/refresh': ('?', '?'),
    'POST /api/v1/auth/register': ('?', '?'),
    # room calendars (venues, their bookings) are shown to every signed-in account, so rooms are not double-booked
    'GET /api/v1/bookings/{booking_id}': ('agbes', 'agbes'),
    'POST /api/v1/bookings/{booking_id}/cancel': ('ag', 'a'),
    'POST /api/v1/clarifications/{clarification_id}/answer': ('ag', 'a'),
    'GET /api/v1/documents/{document_id}': ('*', '*'),
    'GET /api/v1/draws/{draw_id}': ('ags', 'a'),
    'POST /api/v1/draws/{draw_id}/cancel': ('ags', 'a'),
    'POST /api/v1/draws/{draw_id}/entropy': ('s', ''),
    'GET /api/v1/draws/{draw_id}/exclusions': ('s', ''),
    'GET /api/v1/draws/{draw_id}/record': ('s', ''),
    'GET /api/v1/draws/{draw_id}/verification': ('s', ''),
    'GET /api/v1/enrolment': ('?', '?'),
    'POST /api/v1/enrolment/complete': ('?', '?'),
    'POST /api/v1/enrolment/totp': ('?', '?'),
    'GET /api/v1/evaluation-sessions/{session_id}': ('ags', 'a'),
    'POST /api/v1/evaluation-sessions/{session_id}/abort': ('ags', 'a'),
    'GET /api/v1/evaluation-sessions/{session_id}/chair': ('ages', 'a'),
    'GET /api/v1/evaluation-sessions/{session_id}/bids': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/bids/{bid_id}/documents/{n}': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/candidates': ('ag', 'a'),
    'POST /api/v1/evaluation-sessions/{session_id}/re-evaluation': ('ag', 'a'),
    'GET /api/v1/evaluation-sessions/{session_id}/recordings': ('s', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/report': ('ag', 'a'),
    'GET /api/v1/evaluation-sessions/{session_id}/report': ('ages', 'a'),
    'POST /api/v1/evaluation-sessions/{session_id}/report/dissent': ('e', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/report/refusal': ('e', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/report/signatures': ('e', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/timeline': ('s', ''),
    'POST /api/v1/media/devices/token': ('?', '?'),
    'POST /api/v1/media/devices/{device_id}/credentials': ('a', 'a'),
    'POST /api/v1/media/devices/{device_id}/credentials/{credential_id}/revoke': ('a', 'a'),
    'GET /api/v1/media/segments/{segment_id}': ('s', ''),
    # where a session's media sockets live (a worker's address, no session data); the sockets authenticate
    'GET /api/v1/media/sessions/{session_id}/connect': ('agbes', 'agbes'),
    'GET /api/v1/media/sessions/{session_id}/health': ('s', ''),
    # WebSockets: the upgrade is answered for anyone, then the socket authenticates and closes with 4401/4403/
    # 4404 (tests/integration/media/test_authorization.py checks every role on all three)
    'GET /api/v1/media/sessions/{session_id}/conference': ('*', '*'),
    'GET /api/v1/media/sessions/{session_id}/places/{place_id}/publish': ('*', '*'),
    'GET /api/v1/media/sessions/{session_id}/watch': ('*', '*'),
    'POST /api/v1/evaluation-sessions/{session_id}/chair/draw': ('s', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/chair/votes': ('e', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/check-in': ('e', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/check-in/open': ('ag', 'a'),
    'POST /api/v1/evaluation-sessions/{session_id}/committee': ('ag', 'a'),
    'GET /api/v1/evaluation-sessions/{session_id}/committee': ('ags', 'a'),
    'GET /api/v1/evaluation-sessions/{session_id}/declaration': ('e', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/fault-decision': ('ag', 'a'),
    'GET /api/v1/evaluation-sessions/{session_id}/flags': ('ages', 'a'),
    'POST /api/v1/evaluation-sessions/{session_id}/flags/justify': ('e', ''),
    'PUT /api/v1/evaluation-sessions/{session_id}/members/{member_id}/place': ('ag', 'a'),
    'POST /api/v1/evaluation-sessions/{session_id}/resume': ('s', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/review': ('ages', 'a'),
    'POST /api/v1/evaluation-sessions/{session_id}/review/ballots': ('e', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/review/close': ('e', ''),
    'PUT /api/v1/evaluation-sessions/{session_id}/review/requirements': ('ag', 'ag'),
    'POST /api/v1/evaluation-sessions/{session_id}/scoring/close': ('e', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/scoring/tie-draw': ('s', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/sheets': ('ages', 'a'),
    'POST /api/v1/evaluation-sessions/{session_id}/sheets/return': ('e', ''),
    'PUT /api/v1/evaluation-sessions/{session_id}/sheets/{bidder}': ('e', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/start': ('ag', 'a'),
    'POST /api/v1/evaluation-sessions/{session_id}/suspend': ('s', ''),
    'GET /api/v1/expert-specialties': ('agbes', 'agbes'),
    'GET /api/v1/expert-statistics/draws': ('as', 'as'),
    'GET /api/v1/expert-statistics/familiar-faces': ('s', 's'),
    'POST /api/v1/experts': ('a', 'a'),
    'GET /api/v1/experts': ('as', 'as'),
    'GET /api/v1/experts/export.csv': ('a', 'a'),
    'POST /api/v1/experts/import': ('a', 'a'),
    'GET /api/v1/experts/{expert_id}': ('aes', 'as'),
    'GET /api/v1/experts/{expert_id}/history': ('aes', 'as'),
    'POST /api/v1/experts/{expert_id}/status': ('a', 'a'),
    'POST /api/v1/invitations/{invitation_id}/accept': ('e', ''),
    'POST /api/v1/invitations/{invitation_id}/decline': ('e', ''),
    'POST /api/v1/lots/{lot_id}/draws': ('g', ''),
    'GET /api/v1/lots/{lot_id}/draws': ('ags', 'a'),
    'POST /api/v1/lots/{lot_id}/evaluation-sessions': ('a', ''),
    'GET /api/v1/lots/{lot_id}/evaluation-sessions': ('ags', 'a'),
    'POST /api/v1/lots/{lot_id}/registrations': ('b', 'b'),
    'GET /api/v1/me': ('agbes', 'agbes'),
    'GET /api/v1/me/expert': ('e', 'e'),
    'POST /api/v1/me/expert/conflicts': ('e', 'e'),
    'DELETE /api/v1/me/expert/conflicts/{organisation_id}': ('', ''),
    'POST /api/v1/me/expert/leave': ('e', 'e'),
    'DELETE /api/v1/me/expert/leave/{leave_id}': ('e', ''),
    'POST /api/v1/me/holder-key': ('gs', 'gs'),  # key-holding roles only (trading.keyholding)
    # the caller's own holder key: each side's agent enrolled one for its single-source tender; nobody else has one
    'GET /api/v1/me/holder-key': ('g', 'g'),
    'GET /api/v1/me/invitations': ('e', 'e'),
    'POST /api/v1/me/password': ('?', '?'),
    'GET /api/v1/notifications': ('agbes', 'agbes'),
    'POST /api/v1/notifications/read': ('agbes', 'agbes'),
    'POST /api/v1/objections/{objection}/answer': ('g', ''),
    'GET /api/v1/ocds/releases': ('*', '*'),
    'GET /api/v1/pki/crl': ('*', '*'),
    'GET /api/v1/pki/root.pem': ('*', '*'),
    'PATCH /api/v1/places/{place_id}': ('a', 'a'),
    'POST /api/v1/places/{place_id}/retire': ('a', 'a'),
    'GET /api/v1/records': ('ags', 'ags'),
    'POST /api/v1/records/verify': ('*', '*'),
    'GET /api/v1/records/{record_no}': ('s', ''),
    'GET /api/v1/records/{record_no}/verification': ('s', ''),
    'GET /api/v1/rooms/{room_id}': ('agbes', 'agbes'),
    'PATCH /api/v1/rooms/{room_id}': ('a', 'a'),
    'POST /api/v1/rooms/{room_id}/bookings': ('a', 'a'),
    'GET /api/v1/rooms/{room_id}/bookings': ('agbes', 'agbes'),
    'POST /api/v1/rooms/{room_id}/places': ('a', 'a'),
    'POST /api/v1/rooms/{room_id}/retire': ('a', 'a'),
    'POST /api/v1/sites': ('a', 'a'),
    'GET /api/v1/sites': ('agbes', 'agbes'),
    'GET /api/v1/sites/{site_id}': ('agbes', 'agbes'),
    'PATCH /api/v1/sites/{site_id}': ('a', 'a'),
    'GET /api/v1/sites/{site_id}/devices': ('a', 'a'),
    'POST /api/v1/sites/{site_id}/devices': ('a', 'a'),
    'POST /api/v1/sites/{site_id}/retire': ('a', 'a'),
    'POST /api/v1/sites/{site_id}/rooms': ('a', 'a'),
    'GET /api/v1/supervision/evaluation-sessions': ('as', 'as'),
    'GET /api/v1/tenders': ('*', '*'),
    'POST /api/v1/tenders': ('g', 'g'),
    'GET /api/v1/tenders/feed.atom': ('*', '*'),
    'GET /api/v1/tenders/{code}': ('*', '*', 'ag', 'a'),
    'PATCH /api/v1/tenders/{code}': ('ag', 'a', 'ag', 'a'),
    'POST /api/v1/tenders/{code}/amendments': ('ag', 'a', 'ag', 'a'),
    'POST /api/v1/tenders/{code}/award': ('g', '', 'g', ''),
    'POST /api/v1/tenders/{code}/complete': ('g', '', 'g', ''),
    'POST /api/v1/tenders/{code}/cancel': ('ag', 'a', 'ag', 'a'),
    'POST /api/v1/tenders/{code}/candidates': ('g', '', 'g', ''),
    'GET /api/v1/tenders/{code}/candidates': ('*', '*', 'ag', 'a'),
    'POST /api/v1/tenders/{code}/clarifications': ('b', 'b', '', ''),
    'GET /api/v1/tenders/{code}/clarifications': ('*', '*', 'ag', 'a'),
    'POST /api/v1/tenders/{code}/documents': ('ag', 'a', 'ag', 'a'),
    'PUT /api/v1/tenders/{code}/key-holders': ('g', '', 'g', ''),
    'GET /api/v1/tenders/{code}/key-holders': ('g', '', 'g', ''),
    'PUT /api/v1/tenders/{code}/lots/{lot}/bid': ('b', 'b', '', ''),   # B's lot: registered by the write phase
    # the bidder's own sealed bid (build_side uploads it); on B's lot the write phase's example body is no bid
    # bundle, so A's bidder has no bid there to read or withdraw (404 no_bid)
    'GET /api/v1/tenders/{code}/lots/{lot}/bid': ('b', '', '', ''),
    'DELETE /api/v1/tenders/{code}/lots/{lot}/bid': ('b', '', '', ''),
    'POST /api/v1/tenders/{code}/objections': ('b', '', '', ''),
    'GET /api/v1/tenders/{code}/objections': ('*', '*', 'ag', 'a'),
    'GET /api/v1/tenders/{code}/ocds': ('*', '*', 'ag', 'a'),
    'GET /api/v1/tenders/{code}/opened-bids': ('*', '*', 'ag', 'a'),
    'POST /api/v1/tenders/{code}/opening': ('g', '', 'g', ''),
    'GET /api/v1/tenders/{code}/opening': ('*', '*', 'ag', 'a'),
    'POST /api/v1/tenders/{code}/opening/shares': ('agbes', 'agbes', 'ag', 'a'),
    'POST /api/v1/tenders/{code}/publish': ('ag', 'a', 'ag', 'a'),
}

LETTERS = {"anonymous": "n", "admin": "a", "agent": "g", "bidder": "b", "expert": "e", "supervisor": "s"}
WRITE_ORDER = ("anonymous", "expert", "bidder", "supervisor", "agent", "admin")   # strangers first


@dataclass
class Operation:
    method: str
    path: str
    params: list[str]
    body_schema: dict | None
    body_type: str | None

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"

    def variants(self) -> list[str]:
        """own and other; where the path takes a tender code, the same again with each side's draft tender."""
        return ["own", "other", "own-draft", "other-draft"] if "code" in self.params else ["own", "other"]


def operations(spec: dict) -> list[Operation]:
    out = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            body = op.get("requestBody", {}).get("content", {})
            out.append(Operation(method, path, params, body.get("application/json", {}).get("schema"),
                                 next(iter(body), None)))
    return out


def url(op: Operation, variant: str, sides: dict[str, Side]) -> str:
    side = sides["A" if variant.startswith("own") else "B"]
    path = op.path
    for name in op.params:
        value = side.ids["draft" if name == "code" and variant.endswith("draft") else name]
        path = path.replace("{" + name + "}", value)
    return path


def judged(expected: tuple[str, ...], variant: str) -> bool:
    return dict(zip(["own", "other", "own-draft", "other-draft"], expected))[variant] != "?"


def allowed(expected: tuple[str, ...], variant: str, role: str) -> bool:
    letters = dict(zip(["own", "other", "own-draft", "other-draft"], expected))[variant]
    return "*" in letters or LETTERS[role] in letters


async def test_every_role_reaches_exactly_the_objects_the_table_allows_on_every_route(client, sessions, db_url):
    admin = await staff(sessions, client, "admin")
    await supervising_org(sessions)   # the helpers' shared supervising organisation, made once before the sides
    turn = asyncio.Lock()
    built = await asyncio.gather(*(build_side(client, sessions, db_url, name, admin, specialty, turn)
                                   for name, specialty in (("A", "A0101"), ("B", "A0102"))))
    sides = dict(zip(("A", "B"), built))
    actors = {**sides["A"].actors, "admin": admin, "anonymous": None}
    spec = await (await client.get("/api/v1/openapi.json")).json()
    components = spec["components"]["schemas"]
    ops = operations(spec)
    missing = sorted(op.label for op in ops if op.label not in EXPECTED)
    stale = sorted(set(EXPECTED) - {op.label for op in ops})
    # every object a path names is a real one of each side: a route with a new kind of id fails here until the
    # sides make one
    unfilled = sorted({f"{op.label}: {{{p}}}" for op in ops for p in op.params
                       for side in sides.values() if p not in side.ids})
    assert unfilled == [], "build_side makes no object for " + ", ".join(unfilled)

    observed: dict[str, dict[str, set[str]]] = {}
    server_errors: list[str] = []
    statuses: dict[str, dict[tuple[str, str], int]] = {}

    async def call(op: Operation, variant: str, role: str) -> None:
        who = actors[role]
        kw: dict = {"headers": dict(who.headers) if who else {}}
        if op.body_schema is not None:
            kw["json"] = example(op.body_schema, components)
        elif op.body_type is not None:
            kw["data"] = b""
            kw["headers"]["Content-Type"] = op.body_type
        async with client.request(op.method.upper(), url(op, variant, sides), **kw) as resp:
            status = resp.status
            await resp.read()
        if status >= 500:
            server_errors.append(f"{role} {variant} {op.label}: {status}")
        statuses.setdefault(op.label, {})[(variant, role)] = status
        if status not in DENIED:
            observed.setdefault(op.label, {}).setdefault(variant, set()).add(role)

    # reads change nothing, so they run side by side (a few at once); writes run one by one, in order
    gate = asyncio.Semaphore(READERS)

    async def read(op: Operation, variant: str, role: str) -> None:
        async with gate:
            await call(op, variant, role)
    await asyncio.gather(*(read(op, variant, role) for op in ops if op.method in READING
                           for variant, role in itertools.product(op.variants(), ROLES)))
    # anonymous writes change nothing of either world (refused with 401, or public operations whose credentials
    # are in the body), so they too run side by side; every signed-in role's writes run one by one, in order
    await asyncio.gather(*(read(op, variant, "anonymous") for op in ops if op.method not in READING
                           for variant in op.variants()))
    for role in WRITE_ORDER[1:]:
        for op in ops:
            if op.method not in READING:
                for variant in reversed(op.variants()):   # the other side's objects first
                    await call(op, variant, role)

    def row(op: Operation) -> tuple[str, ...]:
        got = observed.get(op.label, {})
        cells = ["".join(LETTERS[r] for r in ROLES if r in got.get(v, set())) for v in op.variants()]
        return tuple("*" if c == "".join(LETTERS.values()) else c for c in cells)

    table = "\n".join(f"    {op.label!r}: {row(op)!r}," for op in ops)
    assert not missing and not stale, f"EXPECTED lacks {missing}, or names gone routes {stale}; observed:\n{table}"
    assert server_errors == [], "\n".join(server_errors)
    wrong = [f"{op.label} {variant} {role}: expected {'allow' if want else 'deny'}, got "
             f"{statuses[op.label][(variant, role)]}"
             for op in ops for variant in op.variants() for role in ROLES if judged(EXPECTED[op.label], variant)
             if (want := allowed(EXPECTED[op.label], variant, role)) != (role in observed.get(op.label, {}).get(variant, set()))]
    assert wrong == [], "\n".join(wrong) + "\nobserved:\n" + table
