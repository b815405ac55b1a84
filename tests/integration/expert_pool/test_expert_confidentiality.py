"""Until the award, who sits on a committee is secret: every endpoint that exposes a draw is checked per role.

Agents see counts, confirmation status and which records exist; the tender's supervisors see identities and
read the records; supervisors of other organisations are strangers; each expert sees only their own invitation
(time, venue, specialty) and nothing about the project's parties; bidders and anonymous callers are refused.
A record follows its draw: before the award, its number opens nothing for anyone but the tender's supervisors.
"""
import json

from tests.helpers import bidder, staff
from web.keys import SCHEDULER

from .conftest import employed_experts, session_time, sign_in, tender_with_lot

IDENTITY_KEYS = {"result", "invitations", "entropy", "seed"}


def mentions(body, words) -> list[str]:
    text = json.dumps(body, ensure_ascii=False)
    return [w for w in words if w in text]


async def status_and_code(resp) -> tuple[int, str | None]:
    body = await resp.json()
    return resp.status, (body.get("error") or {}).get("code") if isinstance(body, dict) else None


async def test_each_role_sees_exactly_what_it_may_of_a_draw_on_every_endpoint(
        client, sessions, raw_conn, agent, supervisor, other_supervisor, admin):
    info = await tender_with_lot(sessions, agent, bidders=1)
    pool = await employed_experts(sessions, 7, specialty="A0101", city="440100", account=True)
    names = dict(await raw_conn.fetch("SELECT public_id, name FROM expert"))
    tender_words = [info.code, info.tenderer, *info.bidders]
    resp = await client.post(f"/api/v1/lots/{info.lot_id}/draws", headers=agent.headers, json={
        "session_at": session_time(), "venue": "中山 1号评标室",
        "quotas": [{"name": "土建", "specialty": "A0101", "count": 5, "backups": 1}]})
    assert resp.status == 201
    created = await resp.json()
    draw_id = created["draw_id"]
    assert not IDENTITY_KEYS & {k for k, v in created.items() if v is not None}
    # an agent may not execute the draw, nor a supervisor of another organisation; the tender's supervisor does
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=agent.headers, json={"entropy": "x"})
    assert resp.status == 403
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=other_supervisor.headers,
                             json={"entropy": "x"})
    assert await status_and_code(resp) == (403, "draw_forbidden")
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers,
                             json={"entropy": "confidential 保密"})
    assert resp.status == 200
    await client.server.app[SCHEDULER].run_due()  # the record PDFs
    drawn = await resp.json()
    picked = {p["expert_id"] for r in drawn["result"] for p in (*r["primaries"], *r["backups"])}
    invited = {i["expert_id"]: i["invitation_id"] for i in drawn["invitations"]}
    secret_words = [*picked, *(names[p] for p in picked)]

    other_agent = await staff(sessions, client, "agent")
    some_bidder = await bidder(client)
    experts = {e.expert_id: await sign_in(client, e.username) for e in pool}
    drawn_expert = next(iter(invited))
    idle_expert = next(e for e in experts if e not in picked)

    draw_views = (f"/api/v1/draws/{draw_id}", f"/api/v1/lots/{info.lot_id}/draws")
    restricted = (f"/api/v1/draws/{draw_id}/verification", f"/api/v1/draws/{draw_id}/record",
                  f"/api/v1/draws/{draw_id}/exclusions", f"/api/v1/draws/{draw_id}/record?edition=supervisor")

    # Supervisors: identities everywhere, both record editions.
    for url in (*draw_views, *restricted):
        resp = await client.get(url, headers=supervisor.headers)
        assert resp.status == 200, url
    view = await (await client.get(draw_views[0], headers=supervisor.headers)).json()
    assert view["identities_disclosed"] and set(mentions(view, secret_words)) == set(secret_words)
    assert {r["edition"] for r in view["records"]} == {"public", "supervisor"}
    records = {r["edition"]: r["download"] for r in view["records"]}

    # The tender's agent: counts and confirmation status, and which records exist, none of them readable.
    for url in draw_views:
        resp = await client.get(url, headers=agent.headers)
        body = await resp.json()
        assert resp.status == 200, url
        for view in body if isinstance(body, list) else [body]:
            assert not view["identities_disclosed"]
            assert {(r["edition"], r["readable"]) for r in view["records"]} == {("public", False),
                                                                                 ("supervisor", False)}
            assert not IDENTITY_KEYS & {k for k, v in view.items() if v is not None}
            assert view["confirmation"]["土建"] == {"seats": 5, "accepted": 0, "pending": 5, "open": 0,
                                                   "declined": 0, "expired": 0, "withdrawn": 0}
            assert mentions(view, secret_words) == []
    for url in restricted:
        assert (await client.get(url, headers=agent.headers)).status == 403, url
    # the record number opens nothing: not the PDF, not its verification page, not the list by entity
    for record in records.values():
        resp = await client.get(record, headers=agent.headers)
        assert await status_and_code(resp) == (403, "record_restricted")
        for who in (agent, None):
            resp = await client.get(f"{record}/verification", headers=who.headers if who else {})
            assert await status_and_code(resp) == (403, "record_restricted")
    resp = await client.get(f"/api/v1/records?entity=draw:{draw_id}", headers=agent.headers)
    assert resp.status == 200 and await resp.json() == []
    listed = await (await client.get(f"/api/v1/records?entity=draw:{draw_id}", headers=supervisor.headers)).json()
    assert len(listed) == 2
    # ... nor do the record's bytes: verification by upload does not confirm them to an outsider before the award
    pdf = await (await client.get(records["public"], headers=supervisor.headers)).read()
    resp = await client.post("/api/v1/records/verify", data=pdf, headers={**agent.headers,
                                                                          "Content-Type": "application/pdf"})
    assert await status_and_code(resp) == (403, "record_restricted")
    resp = await client.post("/api/v1/records/verify", data=pdf, headers={**supervisor.headers,
                                                                          "Content-Type": "application/pdf"})
    assert resp.status == 200 and (await resp.json())["archived"] is True

    # Admins manage the pool but see a committee only like the agent until the award.
    view = await (await client.get(draw_views[0], headers=admin.headers)).json()
    assert not view["identities_disclosed"] and mentions(view, secret_words) == []

    # Another agency's agent, another organisation's supervisor, bidders, experts and anonymous callers: refused
    # on every draw endpoint.
    for who, expected in ((other_agent, 403), (other_supervisor, 403), (some_bidder, 403),
                          (experts[drawn_expert], 403), (None, 401)):
        headers = who.headers if who else {}
        for url in (*draw_views, *restricted):
            resp = await client.get(url, headers=headers)
            # anonymous callers are asked to sign in, or refused outright where no sign-in could help
            assert resp.status == expected or (who is None and resp.status == 403), (url, who)
        resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=headers, json={"entropy": "y"})
        assert resp.status == expected
    for who in (some_bidder, other_supervisor, admin, None):
        for record in records.values():
            resp = await client.get(record, headers=who.headers if who else {})
            assert resp.status == 403
    for url in ("/api/v1/expert-statistics/draws", "/api/v1/expert-statistics/familiar-faces"):
        for who in (agent, some_bidder, experts[drawn_expert]):
            assert (await client.get(url, headers=who.headers)).status == 403, url

    # An expert sees only their own invitation: time, venue, specialty, deadline; never the project's parties.
    mine = await (await client.get("/api/v1/me/invitations", headers=experts[drawn_expert].headers)).json()
    assert [i["invitation_id"] for i in mine] == [invited[drawn_expert]]
    assert set(mine[0]) == {"invitation_id", "status", "session_at", "venue", "specialty", "specialty_zh",
                            "specialty_en", "sent_at", "reply_by", "replied_at"}
    notes = await (await client.get("/api/v1/notifications", headers=experts[drawn_expert].headers)).json()
    assert notes and mentions(notes, tender_words + ["中山市第"]) == []
    assert await (await client.get("/api/v1/me/invitations", headers=experts[idle_expert].headers)).json() == []
    someone_else = next(e for e in invited if e != drawn_expert)
    resp = await client.post(f"/api/v1/invitations/{invited[someone_else]}/accept",
                             headers=experts[drawn_expert].headers)
    assert await status_and_code(resp) == (404, "invitation_not_found")

    # after the award the committee is no longer secret: checked on a lot awarded through the API, in
    # tests/integration/evaluation/test_draws_through_the_states.py
