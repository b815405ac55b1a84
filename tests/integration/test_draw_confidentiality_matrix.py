"""The draw-confidentiality matrix, generated from the route table.

Every operation of the OpenAPI document whose path (or a required query parameter) takes a draw, record, lot
or tender id is called as each role — anonymous, a bidder, the tender's agent, another agent, a drawn expert,
the tender's supervisor, another organisation's supervisor, an admin — before the award here, and after it on a
lot awarded through the API (tests/integration/evaluation/test_draws_through_the_states.py, with `sweep`). The
committee's identities (the drawn experts' public ids E-… and their names) may appear in a response only where
PRODUCT.md allows: to the tender's supervisors always, to everyone once the award is made (the member list is
secret until the award), and to a drawn expert their own identity.

Nothing here lists routes: a new route with such a parameter is called without editing this test, and a path
parameter this test cannot fill fails it loudly. Operations that change state are called with a body built
from their request schema (so it passes validation where the schema allows) after every reading call of the
phase; whatever their status, no identity may leak in the response. No response may be a 5xx.
"""
from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from tests.helpers import Actor, bidder, staff
from tests.integration.expert_pool.conftest import (add_expert, organisation, session_time, sign_in,
                                                    supervising_org, tender_with_lot)
from web.keys import SCHEDULER

ROLES = ("anonymous", "bidder", "tender_agent", "other_agent", "expert", "tender_supervisor",
         "other_supervisor", "admin")
# names no other text of the platform contains, none a part of another
NAMES = [f"甄秘{c}{d}" for c, d in zip("甲乙丙丁戊己庚辛壬癸", "子丑寅卯辰巳午未申酉")]
WRITE_ORDER = ("anonymous", "bidder", "other_agent", "expert", "other_supervisor", "tender_supervisor", "admin",
               "tender_agent")
READING = {"get", "head"}
ROOT = Path(__file__).resolve().parents[2]


def kind_of(parameter: str) -> str | None:
    """What an id parameter names: a draw, a record, a lot or a tender (None: something else)."""
    name = parameter.lower()
    for kind, words in (("draw", ("draw",)), ("record", ("record",)), ("lot", ("lot",)),
                        ("tender", ("tender", "code")), ("entity", ("entity",))):
        if any(w in name for w in words):
            return kind
    return None


@dataclass
class Operation:
    method: str
    path: str
    path_params: list[str]
    query: dict[str, dict]          # required query parameters: name -> schema
    body_schema: dict | None
    body_type: str | None

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def foreign_tags() -> set[str]:
    """Tags of route modules imported from outside this checkout: an editable install may resolve a domain this
    checkout does not have from another checkout, whose tables this database lacks. They are not this build."""
    from web.app import route_modules
    return {m.api.tag for m in route_modules() if not Path(m.__file__).resolve().is_relative_to(ROOT)}


def operations(spec: dict) -> list[Operation]:
    """The operations that take a draw, record, lot or tender id, in the path or a required query parameter."""
    out = []
    foreign = foreign_tags()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if foreign.intersection(op.get("tags", ())):
                continue
            params = op.get("parameters", [])
            in_path = [p["name"] for p in params if p["in"] == "path"]
            query = {p["name"]: p.get("schema", {}) for p in params if p["in"] == "query" and p.get("required")}
            if not any(kind_of(p) for p in [*in_path, *query]):
                continue
            body = op.get("requestBody", {}).get("content", {})
            body_type = next(iter(body), None)
            out.append(Operation(method, path, in_path, query, body.get("application/json", {}).get("schema"),
                                 body_type))
    return out


def example(schema: dict, components: dict, field: str = "") -> Any:
    """A value that passes the schema where it can: required fields only, smallest lengths and numbers."""
    if "$ref" in schema:
        return example(components[schema["$ref"].rsplit("/", 1)[-1]], components, field)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [s for s in schema[union] if s.get("type") != "null"] or schema[union]
            return example(options[0], components, field)
    if "allOf" in schema:
        return example(schema["allOf"][0], components, field)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema.get("type") != "object":
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: example(prop, components, name) for name, prop in schema.get("properties", {}).items()
                if name in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items", {}), components, field) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
    if kind == "number":
        return str(max(schema.get("minimum", 1), 1))
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    if schema.get("format") == "date":
        return (datetime.now(timezone.utc) + timedelta(days=30)).date().isoformat()
    length = max(schema.get("minLength", 0), 2)
    if "maxLength" in schema:
        length = min(length, schema["maxLength"])
    return ("矩阵" + "x" * length)[:length]


def response_text(raw: bytes, content_type: str) -> str:
    """Everything a reader of the response sees: JSON unescaped, a PDF's text and attachments, or the bytes."""
    if raw.startswith(b"%PDF"):
        reader = PdfReader(io.BytesIO(raw))
        parts = [page.extract_text() or "" for page in reader.pages]
        for contents in reader.attachments.values():
            parts += [c.decode("utf-8", "replace") for c in contents]
        return "\n".join(parts)
    if "json" in content_type:
        try:
            return json.dumps(json.loads(raw), ensure_ascii=False)
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


@dataclass
class World:
    tender_code: str
    lot_id: str
    draw_id: str
    record_nos: list[str]
    committee: dict[str, str]        # drawn expert public id -> name
    actors: dict[str, Actor | None]
    expert_id: str                   # the drawn expert who acts as the "expert" role
    pdfs: list[bytes]


async def build_world(client, sessions, raw_conn) -> World:
    supervisors_org = await supervising_org(sessions)
    agency = await organisation(sessions, "中山市矩阵招标代理有限公司")
    agent = await staff(sessions, client, "agent", organisation_public_id=agency)
    info = await tender_with_lot(sessions, agent, bidders=1)
    some_bidder = await bidder(client)
    resp = await client.post(f"/api/v1/lots/{info.lot_id}/registrations", headers=some_bidder.headers)
    assert resp.status == 201, await resp.text()
    pool = [await add_expert(sessions, specialty="A0101", employer=await organisation(sessions), account=True,
                             name=name) for name in NAMES[:7]]
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=supervisors_org)
    resp = await client.post(f"/api/v1/lots/{info.lot_id}/draws", headers=agent.headers, json={
        "session_at": session_time(), "venue": "中山 矩阵评标室",
        "quotas": [{"name": "土建", "specialty": "A0101", "count": 5, "backups": 1}]})
    assert resp.status == 201, await resp.text()
    draw_id = (await resp.json())["draw_id"]
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers,
                             json={"entropy": "matrix"})
    assert resp.status == 200, await resp.text()
    drawn = await resp.json()
    assert await client.server.app[SCHEDULER].run_due() >= 1  # the record PDFs
    names = {e.expert_id: name for e, name in zip(pool, NAMES)}
    committee = {p["expert_id"]: names[p["expert_id"]] for r in drawn["result"]
                 for p in (*r["primaries"], *r["backups"])}
    invited = drawn["invitations"][0]["expert_id"]
    expert = await sign_in(client, next(e.username for e in pool if e.expert_id == invited))
    record_nos = [r["record_no"] for r in (await (await client.get(
        f"/api/v1/draws/{draw_id}", headers=supervisor.headers)).json())["records"]]
    assert len(record_nos) == 2
    pdfs = [await (await client.get(f"/api/v1/records/{no}", headers=supervisor.headers)).read() for no in record_nos]
    actors = {
        "anonymous": None, "bidder": some_bidder, "tender_agent": agent,
        "other_agent": await staff(sessions, client, "agent", organisation_public_id=await organisation(sessions)),
        "expert": expert, "tender_supervisor": supervisor,
        "other_supervisor": await staff(sessions, client, "supervisor",
                                        organisation_public_id=await organisation(sessions)),
        "admin": await staff(sessions, client, "admin"),
    }
    return World(info.code, info.lot_id, draw_id, record_nos, committee, actors, invited, pdfs)


def fillings(op: Operation, world: World) -> list[tuple[str, dict[str, str]]]:
    """Every (path, query) to call for an operation; fails loudly on a parameter it cannot fill."""
    values = {"draw": [world.draw_id], "record": world.record_nos, "lot": [world.lot_id],
              "tender": [world.tender_code], "entity": [f"draw:{world.draw_id}", f"tender:{world.tender_code}"]}
    unknown = [p for p in [*op.path_params, *op.query] if kind_of(p) is None]
    assert not unknown, (f"{op.label}: the confidentiality matrix cannot fill {unknown}; teach kind_of() what "
                         "these parameters name")
    names = [*op.path_params, *op.query]
    out = []
    for combo in itertools.product(*(values[kind_of(n)] for n in names)):
        chosen = dict(zip(names, combo))
        path = op.path
        for name in op.path_params:
            path = path.replace("{" + name + "}", chosen[name])
        out.append((path, {n: chosen[n] for n in op.query}))
    return out


def may_see(role: str, awarded: bool) -> bool:
    return role == "tender_supervisor" or awarded


@dataclass
class Sweep:
    seen: dict[tuple[str, str], set[str]]   # (phase, role) -> labels of responses carrying identities
    leaks: list[str]
    failures: list[str]


async def sweep(client, world: World, phase: str) -> Sweep:
    """Every reading operation as every role, then every writing one (strangers first), for one phase ("before"
    or "after" the award, which the tender's state must match)."""
    spec = await (await client.get("/api/v1/openapi.json")).json()
    components = spec["components"]["schemas"]
    ops = operations(spec)
    # the matrix is not empty: the draw, record, lot and tender routes are all in it
    covered = {kind_of(p) for op in ops for p in [*op.path_params, *op.query]}
    assert {"draw", "record", "lot", "tender"} <= covered, covered
    readers = [op for op in ops if op.method in READING]
    writers = [op for op in ops if op.method not in READING]
    out = Sweep({}, [], [])

    async def call(role: str, method: str, label: str, url: str, **kw) -> None:
        who = world.actors[role]
        headers = {**(who.headers if who else {}), **kw.pop("headers", {})}
        async with client.request(method.upper(), url, headers=headers, **kw) as resp:
            raw = await resp.read()
            status, ctype = resp.status, resp.content_type
        if status >= 500:
            out.failures.append(f"{phase} {role} {label}: {status}")
        text = response_text(raw, ctype)
        own = {world.expert_id, world.committee[world.expert_id]} if role == "expert" else set()
        found = {w for pid, name in world.committee.items() for w in (pid, name) if w in text} - own
        if found:
            out.seen.setdefault((phase, role), set()).add(label)
            if not may_see(role, phase == "after"):
                out.leaks.append(f"{phase} award, {role}, {label} -> {status}: {sorted(found)}")

    for role in ROLES:
        for op in readers:
            for path, query in fillings(op, world):
                await call(role, op.method, op.label, path, params=query)
        # routes that reach a draw without an id in their path: the inbox, my invitations, verification
        # of a record's bytes by upload
        for url in ("/api/v1/notifications", "/api/v1/me/invitations"):
            await call(role, "get", f"GET {url}", url)
        for pdf in world.pdfs:
            await call(role, "post", "POST /api/v1/records/verify", "/api/v1/records/verify", data=pdf,
                       headers={"Content-Type": "application/pdf"})
    for role in WRITE_ORDER:  # strangers first, the tender's own parties last
        for op in writers:
            for path, query in fillings(op, world):
                if op.body_schema is not None:
                    kw = {"json": example(op.body_schema, components)}
                elif op.body_type is not None:
                    kw = {"data": b"", "headers": {"Content-Type": op.body_type}}
                else:
                    kw = {}
                await call(role, op.method, op.label, path, params=query, **kw)
    return out


async def test_expert_identities_appear_only_where_the_product_allows_on_every_route(client, sessions, raw_conn):
    """Before the award. After it, on a lot awarded through the API:
    tests/integration/evaluation/test_draws_through_the_states.py."""
    world = await build_world(client, sessions, raw_conn)
    found = await sweep(client, world, "before")
    assert found.failures == [], "\n".join(found.failures)
    assert found.leaks == [], "\n".join(found.leaks)
    # and the matrix sees identities where they are allowed, so its "no leak" means something
    draw_view = "GET /api/v1/draws/{draw_id}"
    record_pdf = "GET /api/v1/records/{record_no}"
    assert {draw_view, record_pdf, "GET /api/v1/draws/{draw_id}/record"} <= found.seen[("before", "tender_supervisor")]
