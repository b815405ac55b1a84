"""The whole draw: request, commitment, entropy, draw, invitations, a decline, a timeout, backups promoted,
a supplementary draw, the committee formed, and the signed record PDFs that re-check."""
import io
import json

from pypdf import PdfReader

from expert_pool.draw_verify import verify_record
from web.keys import SCHEDULER

from .conftest import (add_expert, employed_experts, organisation, pdf_exclusion_counts, pdf_lines, session_time, sign_in,
                       tender_with_lot)


async def ledger_actions(raw_conn, entity: str) -> list[str]:
    rows = await raw_conn.fetch("SELECT action FROM audit_entry WHERE entity = $1 ORDER BY seq", entity)
    return [r["action"] for r in rows]


async def test_a_draw_runs_from_request_to_a_formed_committee_with_replacements_and_a_supplementary_draw(
        client, sessions, raw_conn, agent, supervisor, admin):
    info = await tender_with_lot(sessions, agent)
    builders = await employed_experts(sessions, 5, specialty="A0101", city="440100", account=True)
    costers = await employed_experts(sessions, 3, specialty="C0101", city="442000", account=True)
    experts = {e.expert_id: await sign_in(client, e.username) for e in builders + costers}
    # two builders avoidance must leave out: one works for the tenderer, one is suspended
    await add_expert(sessions, specialty="A0101", city="440100", employer=info.tenderer)
    suspended = await add_expert(sessions, specialty="A0101", city="440100", employer=await organisation(sessions))
    resp = await client.post(f"/api/v1/experts/{suspended.expert_id}/status", headers=admin.headers,
                             json={"status": "suspended", "reason": "违规"})
    assert resp.status == 200, await resp.text()

    # 1. Request: the commitment is published at once, with the request and the candidates' digest.
    resp = await client.post(f"/api/v1/lots/{info.lot_id}/draws", headers=agent.headers, json={
        "session_at": session_time(), "venue": "中山市公共资源交易中心 3号评标室",
        "quotas": [{"name": "土建", "specialty": "A01", "region": "440100", "count": 3, "backups": 1},
                   {"name": "造价", "specialty": "C0101", "region": "442000", "count": 2, "backups": 0}]})
    assert resp.status == 201, await resp.text()
    notice = await resp.json()
    draw_id = notice["draw_id"]
    assert notice["status"] == "awaiting_entropy" and len(notice["commitment"]) == 64
    assert notice["eligible"] == 8 and notice["considered"] == 10 and notice.get("result") is None
    assert notice["exclusions"] == {"suspended": 1, "employer_is_tenderer": 1}
    commit = await raw_conn.fetchrow("SELECT payload FROM audit_entry WHERE action = 'draw.commit'")
    payload = json.loads(commit["payload"])
    assert payload["commitment"] == notice["commitment"]
    assert payload["request"]["draw_id"] == draw_id and len(payload["candidates_sha256"]) == 64

    # 2. A supervisor's entropy executes the draw; the five primaries are invited.
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers,
                             json={"entropy": "f3a9c2e17b5d4a60a1b2c3d4e5f60718"})
    assert resp.status == 200, await resp.text()
    drawn = await resp.json()
    invited = {i["expert_id"]: i for i in drawn["invitations"]}
    assert len(invited) == 5 and all(i["status"] == "pending" for i in invited.values())
    result = {r["quota"]: r for r in drawn["result"]}
    builder_backup = result["土建"]["backups"][0]["expert_id"]
    assert builder_backup not in invited and result["造价"]["backups"] == []
    # The record PDFs are issued by the scheduler right after the draw, and listed on the draw for supervisors.
    assert await client.server.app[SCHEDULER].run_due() == 1
    state = await (await client.get(f"/api/v1/draws/{draw_id}", headers=supervisor.headers)).json()
    records = {r["edition"]: r for r in state["records"]}
    assert set(records) == {"public", "supervisor"}

    # 3. A builder declines: the backup is invited to the same seat.
    decliner = result["土建"]["primaries"][1]["expert_id"]
    resp = await client.post(f"/api/v1/invitations/{invited[decliner]['invitation_id']}/decline",
                             headers=experts[decliner].headers, json={"reason": "出差在外 travelling"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "declined"
    resp = await client.get("/api/v1/me/invitations", headers=experts[builder_backup].headers)
    [promoted] = await resp.json()
    assert promoted["status"] == "pending" and promoted["specialty"] == "A01"

    # 4. A cost expert lets the deadline pass: the scheduler expires the invitation; no backup is left, so
    #    the system commits a supplementary draw, which waits for a supervisor's entropy.
    silent = result["造价"]["primaries"][0]["expert_id"]
    await raw_conn.execute("UPDATE expert_invitation SET reply_by = now() - interval '1 second' "
                           "WHERE public_id = $1", invited[silent]["invitation_id"])
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() - interval '1 second' WHERE dedupe_key = $1",
                           f"expert_invitation:{invited[silent]['invitation_id']}:timeout")
    assert await client.server.app[SCHEDULER].run_due() >= 1
    state = await (await client.get(f"/api/v1/draws/{draw_id}", headers=supervisor.headers)).json()
    assert {i["expert_id"]: i["status"] for i in state["invitations"]}[silent] == "expired"
    [supplementary] = state["supplementary_draws"]
    assert supplementary["status"] == "awaiting_entropy" and supplementary["exclusions"]["already_picked"] == 2

    resp = await client.post(f"/api/v1/draws/{supplementary['draw_id']}/entropy", headers=supervisor.headers,
                             json={"entropy": "second supervisor entropy 第二次"})
    assert resp.status == 200, await resp.text()
    state = await (await client.get(f"/api/v1/draws/{draw_id}", headers=supervisor.headers)).json()
    pending = [i for i in state["invitations"] if i["status"] == "pending"]
    newcomer = [i for i in pending if i["source"] == "supplementary"]
    assert len(newcomer) == 1 and newcomer[0]["quota"] == "造价" and newcomer[0]["expert_id"] not in invited

    # 5. Everyone still pending accepts: the committee is formed.
    for invitation in pending:
        resp = await client.post(f"/api/v1/invitations/{invitation['invitation_id']}/accept",
                                 headers=experts[invitation["expert_id"]].headers)
        assert resp.status == 200, await resp.text()
    state = await (await client.get(f"/api/v1/draws/{draw_id}", headers=supervisor.headers)).json()
    assert state["committee_formed"] and state["status"] == "formed"
    assert state["confirmation"] == {
        "土建": {"seats": 3, "accepted": 3, "pending": 0, "open": 0, "declined": 1, "expired": 0, "withdrawn": 0},
        "造价": {"seats": 2, "accepted": 2, "pending": 0, "open": 0, "declined": 0, "expired": 1, "withdrawn": 0}}

    # 6. Both verification records re-check with the independent verifier.
    for some_draw in (draw_id, supplementary["draw_id"]):
        record = await (await client.get(f"/api/v1/draws/{some_draw}/verification",
                                         headers=supervisor.headers)).json()
        assert verify_record(record).ok
    # ... and the record carries the request, counts, randomness and result, names only in the supervisor edition.
    public = await (await client.get(f"/api/v1/draws/{draw_id}/record", headers=supervisor.headers)).json()
    assert public["eligible"] == 8 and public["entropy"] == "f3a9c2e17b5d4a60a1b2c3d4e5f60718"
    assert all(d["name"] is None for d in public["drawn"])
    assert public["verification"]["seed"] == state["seed"]
    named = await (await client.get(f"/api/v1/draws/{draw_id}/record?edition=supervisor",
                                    headers=supervisor.headers)).json()
    assert all(d["name"] for d in named["drawn"])

    # The public PDF validates, carries the verification record as its attachment and counts exclusions by
    # reason; the supervisor edition adds names and is refused to anyone else.
    pdf = await (await client.get(records["public"]["download"], headers=supervisor.headers)).read()
    resp = await client.post("/api/v1/records/verify", data=pdf,
                             headers={**supervisor.headers, "Content-Type": "application/pdf"})
    report = await resp.json()
    assert resp.status == 200 and report["valid"] and report["sealed"] and report["archived"], report
    reader = PdfReader(io.BytesIO(pdf))
    attached = json.loads(reader.attachments["record.json"][0])
    assert attached["kind"] == "expert_draw" and attached["record_no"] == records["public"]["record_no"]
    assert verify_record(attached["data"]).ok and attached["data"]["draw_id"] == draw_id
    lines = pdf_lines(pdf)
    assert pdf_exclusion_counts(lines) == {"Suspended": 1, "Employed by the tenderer": 1}
    text_public = "\n".join(lines)
    assert state["result"][0]["primaries"][0]["expert_id"] in text_public
    assert state["result"][0]["primaries"][0]["name"] not in text_public
    named_pdf = await (await client.get(records["supervisor"]["download"], headers=supervisor.headers)).read()
    named_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(named_pdf)).pages)
    assert state["result"][0]["primaries"][0]["name"] in named_text
    assert (await client.get(records["supervisor"]["download"], headers=agent.headers)).status == 403
    # the supplementary draw has its own pair of records
    assert await client.server.app[SCHEDULER].run_due() == 1
    sup_state = await (await client.get(f"/api/v1/draws/{supplementary['draw_id']}",
                                        headers=supervisor.headers)).json()
    assert {r["edition"] for r in sup_state["records"]} == {"public", "supervisor"}

    # Every step left an audit entry.
    assert await ledger_actions(raw_conn, f"draw:{draw_id}") == ["draw.commit", "draw.execute", "draw.formed"]
    assert await ledger_actions(raw_conn, f"draw:{supplementary['draw_id']}") == ["draw.commit", "draw.execute"]
    actions = [r["action"] for r in await raw_conn.fetch(
        "SELECT action FROM audit_entry WHERE entity LIKE 'invitation:%' ORDER BY seq")]
    assert actions.count("invitation.send") == 7
    assert actions.count("invitation.decline") == 1 and actions.count("invitation.expire") == 1
    assert actions.count("invitation.accept") == 5

    # The accepting experts now have this tenderer in their service history.
    served = await raw_conn.fetchval("SELECT count(*) FROM expert_service WHERE draw_id = "
                                     "(SELECT id FROM expert_draw WHERE public_id = $1)", draw_id)
    assert served == 5
