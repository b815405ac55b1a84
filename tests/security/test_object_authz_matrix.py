"""The object-level authorization matrix, generated from the route table.

Two organisations' worlds are built side by side (A and B): each with an agency and its agent, a supervising
organisation and its supervisor, a bidder registered on a lot, a pool expert with an account, a published tender
with a clarification, a draft tender, and the records of its draw. Every operation of the OpenAPI document is then
called as every role of side A (and anonymously, and as the platform admin) on side A's object ("own") and on
side B's ("other"), and the outcome is compared with EXPECTED, the one table of who may reach what:

- "allow": the route's handler acted on the object (any answer but 401/403/404, and never a 5xx);
- "deny": 401, 403 or 404, the object unreachable.

An operation of the document missing from EXPECTED fails the test, so a new route cannot ship without its row.
Writes are called after every read, strangers before owners, with a body built from the request schema.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from tests.helpers import Actor, bidder, staff
from tests.integration.expert_pool.conftest import add_expert, organisation, sign_in, tender_with_lot
from tests.integration.test_draw_confidentiality_matrix import example

ROLES = ("anonymous", "admin", "agent", "bidder", "expert", "supervisor")
READING = {"get", "head"}
DENIED = {401, 403, 404}
UNKNOWN = "X-NO-SUCH-0000"


@dataclass
class Side:
    """One organisation's world."""
    actors: dict[str, Actor | None]
    ids: dict[str, str] = field(default_factory=dict)   # path parameter -> this side's object


async def build_side(client, sessions, raw_conn, name: str) -> Side:
    agency = await organisation(sessions, f"中山市{name}招标代理有限公司")
    supervising = await organisation(sessions, f"中山市{name}监督办公室")
    agent = await staff(sessions, client, "agent", organisation_public_id=agency)
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=supervising)
    tender = await tender_with_lot(sessions, agent)
    draft = await tender_with_lot(sessions, agent, status="draft")
    for info in (tender, draft):
        await raw_conn.execute("UPDATE tender SET supervisor_organisation_id = "
                               "(SELECT id FROM organisation WHERE public_id = $1) WHERE id = $2",
                               supervising, info.tender_id)
    someone = await bidder(client)
    resp = await client.post(f"/api/v1/lots/{tender.lot_id}/registrations", headers=someone.headers)
    assert resp.status == 201, await resp.text()
    resp = await client.post(f"/api/v1/tenders/{tender.code}/clarifications", headers=someone.headers,
                             json={"question": f"{name}的问题：工期能否顺延？"})
    assert resp.status == 201, await resp.text()
    clarification = (await resp.json())["clarification_id"]
    pool_expert = await add_expert(sessions, employer=await organisation(sessions), account=True)
    expert = await sign_in(client, pool_expert.username)
    org_of = {r: await raw_conn.fetchval("SELECT o.public_id FROM app_user u JOIN organisation o "
                                         "ON o.id = u.organisation_id WHERE u.public_id = $1", a.public_id)
              for r, a in (("agent", agent), ("bidder", someone))}
    side = Side({"agent": agent, "supervisor": supervisor, "bidder": someone, "expert": expert})
    side.ids = {"code": tender.code, "draft": draft.code, "lot_id": tender.lot_id, "lot": tender.lot_id,
                "clarification_id": str(clarification), "expert_id": pool_expert.expert_id,
                "user_id": someone.public_id, "organisation_id": org_of["bidder"]}
    return side


# Who reaches what, one row per operation: the roles (by letter, LETTERS) whose call is not refused, on side A's
# object ("own") and side B's ("other"), then, where the path takes a tender code, on each side's draft.
# "*": everyone, anonymous included. "?": not judged here, the answer depends on the body's credentials alone (sign-in,
# tokens, enrolment links, passwords; key-holder enrolment, whose roles issue 9 restricts separately).
# Rows whose object this world does not create (sessions, venues, draws, objections ...) are called with an id
# that names nothing: every role must get 401/403/404 and no 5xx, and the row still fails when a new route appears.
EXPECTED: dict[str, tuple[str, ...]] = {
    'POST /api/v1/admin/enrolments': ('a', 'a'),
    'DELETE /api/v1/admin/enrolments/{enrolment_id}': ('', ''),
    'PUT /api/v1/admin/experts/{expert_id}/account': ('a', 'a'),
    'POST /api/v1/admin/experts/{expert_id}/enrolment': ('a', 'a'),
    'POST /api/v1/admin/organisations': ('a', 'a'),
    'POST /api/v1/admin/users': ('a', 'a'),
    'GET /api/v1/admin/users': ('a', 'a'),
    'POST /api/v1/admin/users/{user_id}/enrolment': ('a', 'a'),
    'POST /api/v1/admin/users/{user_id}/revoke-sessions': ('a', 'a'),
    'GET /api/v1/audit/checkpoint': ('', ''),
    'POST /api/v1/audit/checkpoint': ('as', 'as'),
    'GET /api/v1/audit/entries': ('as', 'as'),
    'POST /api/v1/auth/login': ('?', '?'),
    'POST /api/v1/auth/logout': ('?', '?'),
    'POST /api/v1/auth/refresh': ('?', '?'),
    'POST /api/v1/auth/register': ('?', '?'),
    'GET /api/v1/bookings/{booking_id}': ('', ''),
    'POST /api/v1/bookings/{booking_id}/cancel': ('', ''),
    'POST /api/v1/clarifications/{clarification_id}/answer': ('ag', 'a'),
    'GET /api/v1/documents/{document_id}': ('', ''),
    'GET /api/v1/draws/{draw_id}': ('', ''),
    'POST /api/v1/draws/{draw_id}/cancel': ('', ''),
    'POST /api/v1/draws/{draw_id}/entropy': ('', ''),
    'GET /api/v1/draws/{draw_id}/exclusions': ('', ''),
    'GET /api/v1/draws/{draw_id}/record': ('', ''),
    'GET /api/v1/draws/{draw_id}/verification': ('', ''),
    'GET /api/v1/enrolment': ('?', '?'),
    'POST /api/v1/enrolment/complete': ('?', '?'),
    'POST /api/v1/enrolment/totp': ('?', '?'),
    'GET /api/v1/evaluation-sessions/{session_id}': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/abort': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/chair': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/bids': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/bids/{bid_id}/documents/{n}': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/candidates': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/re-evaluation': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/recordings': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/report': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/report': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/report/dissent': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/report/refusal': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/report/signatures': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/timeline': ('', ''),
    'GET /api/v1/media/segments/{segment_id}': ('', ''),
    'GET /api/v1/media/sessions/{session_id}/connect': ('', ''),
    'GET /api/v1/media/sessions/{session_id}/health': ('', ''),
    # WebSockets: the upgrade is answered for anyone, then the socket authenticates and closes with 4401/4403/
    # 4404 (tests/integration/media/test_authorization.py checks every role on all three)
    'GET /api/v1/media/sessions/{session_id}/conference': ('*', '*'),
    'GET /api/v1/media/sessions/{session_id}/places/{place_id}/publish': ('*', '*'),
    'GET /api/v1/media/sessions/{session_id}/watch': ('*', '*'),
    'POST /api/v1/evaluation-sessions/{session_id}/chair/draw': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/chair/votes': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/check-in': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/check-in/open': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/committee': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/committee': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/declaration': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/fault-decision': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/flags': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/flags/justify': ('', ''),
    'PUT /api/v1/evaluation-sessions/{session_id}/members/{member_id}/place': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/resume': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/review': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/review/ballots': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/review/close': ('', ''),
    'PUT /api/v1/evaluation-sessions/{session_id}/review/requirements': ('ag', 'ag'),
    'POST /api/v1/evaluation-sessions/{session_id}/scoring/close': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/scoring/tie-draw': ('', ''),
    'GET /api/v1/evaluation-sessions/{session_id}/sheets': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/sheets/return': ('', ''),
    'PUT /api/v1/evaluation-sessions/{session_id}/sheets/{bidder}': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/start': ('', ''),
    'POST /api/v1/evaluation-sessions/{session_id}/suspend': ('', ''),
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
    'POST /api/v1/invitations/{invitation_id}/accept': ('', ''),
    'POST /api/v1/invitations/{invitation_id}/decline': ('', ''),
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
    'DELETE /api/v1/me/expert/leave/{leave_id}': ('', ''),
    'POST /api/v1/me/holder-key': ('gs', 'gs'),  # key-holding roles only (trading.keyholding)
    'GET /api/v1/me/holder-key': ('', ''),
    'GET /api/v1/me/invitations': ('e', 'e'),
    'POST /api/v1/me/password': ('?', '?'),
    'GET /api/v1/notifications': ('agbes', 'agbes'),
    'POST /api/v1/notifications/read': ('agbes', 'agbes'),
    'POST /api/v1/objections/{objection}/answer': ('', ''),
    'GET /api/v1/ocds/releases': ('*', '*'),
    'GET /api/v1/pki/crl': ('*', '*'),
    'GET /api/v1/pki/root.pem': ('*', '*'),
    'PATCH /api/v1/places/{place_id}': ('', ''),
    'POST /api/v1/places/{place_id}/retire': ('', ''),
    'GET /api/v1/records': ('ags', 'ags'),
    'POST /api/v1/records/verify': ('*', '*'),
    'GET /api/v1/records/{record_no}': ('', ''),
    'GET /api/v1/records/{record_no}/verification': ('', ''),
    'GET /api/v1/rooms/{room_id}': ('', ''),
    'PATCH /api/v1/rooms/{room_id}': ('', ''),
    'POST /api/v1/rooms/{room_id}/bookings': ('', ''),
    'GET /api/v1/rooms/{room_id}/bookings': ('', ''),
    'POST /api/v1/rooms/{room_id}/places': ('', ''),
    'POST /api/v1/rooms/{room_id}/retire': ('', ''),
    'POST /api/v1/sites': ('a', 'a'),
    'GET /api/v1/sites': ('agbes', 'agbes'),
    'GET /api/v1/sites/{site_id}': ('', ''),
    'PATCH /api/v1/sites/{site_id}': ('', ''),
    'POST /api/v1/sites/{site_id}/retire': ('', ''),
    'POST /api/v1/sites/{site_id}/rooms': ('', ''),
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
    'GET /api/v1/tenders/{code}/lots/{lot}/bid': ('', '', '', ''),
    'DELETE /api/v1/tenders/{code}/lots/{lot}/bid': ('b', 'b', '', ''),
    'POST /api/v1/tenders/{code}/objections': ('', '', '', ''),
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
        value = side.ids.get("draft" if name == "code" and variant.endswith("draft") else name, UNKNOWN)
        path = path.replace("{" + name + "}", value)
    return path


def judged(expected: tuple[str, ...], variant: str) -> bool:
    return dict(zip(["own", "other", "own-draft", "other-draft"], expected))[variant] != "?"


def allowed(expected: tuple[str, ...], variant: str, role: str) -> bool:
    letters = dict(zip(["own", "other", "own-draft", "other-draft"], expected))[variant]
    return "*" in letters or LETTERS[role] in letters


async def test_every_role_reaches_exactly_the_objects_the_table_allows_on_every_route(client, sessions, raw_conn):
    sides = {name: await build_side(client, sessions, raw_conn, name) for name in ("A", "B")}
    admin = await staff(sessions, client, "admin")
    actors = {**sides["A"].actors, "admin": admin, "anonymous": None}
    spec = await (await client.get("/api/v1/openapi.json")).json()
    components = spec["components"]["schemas"]
    ops = operations(spec)
    missing = sorted(op.label for op in ops if op.label not in EXPECTED)
    stale = sorted(set(EXPECTED) - {op.label for op in ops})

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

    for op in ops:
        if op.method in READING:
            for variant, role in itertools.product(op.variants(), ROLES):
                await call(op, variant, role)
    for role in WRITE_ORDER:
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
