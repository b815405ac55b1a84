"""The opened bids reach the committee: members who have checked in list each bidder's opened documents and
download them while the session evaluates; nobody else reads them (招标投标法 第38条), and every download is on
the ledger."""
import hashlib
import json
from urllib.parse import quote

from tests.helpers import staff

from .conftest import post
from .session_setup import DOCUMENTS, check_in_all, member_experts

BY_DIGEST = {hashlib.sha256(data).hexdigest(): (name, data) for docs in DOCUMENTS for name, data in docs.items()}


async def _status(client, url: str, actor=None) -> tuple[int, dict | bytes]:
    resp = await client.get(url, headers=actor.headers if actor else {})
    body = await resp.read()
    return resp.status, (json.loads(body) if resp.content_type == "application/json" else body)


async def _reads(raw_conn) -> list[dict]:
    return [json.loads(r["payload"]) for r in await raw_conn.fetch(
        "SELECT payload FROM audit_entry WHERE action = 'evaluation.materials.read' ORDER BY seq")]


async def test_only_checked_in_members_read_the_opened_bids_and_each_read_is_logged(
        client, sessions, raw_conn, ready):
    admin = ready.admin
    url, agent = ready.url, ready.info.agent
    bids_url = url + "/bids"
    await post(client, url + "/committee", agent, {}, 200)
    await post(client, url + "/check-in/open", agent, None, 200)
    on_committee = list((await member_experts(raw_conn, ready.session_id)).values())
    late, early = on_committee[-1], on_committee[:-1]
    await check_in_all(client, raw_conn, ready, only=early)

    # before the evaluation starts: a member who checked in waits, one who has not is no reader at all
    status, body = await _status(client, bids_url, ready.experts[early[0]])
    assert (status, body["error"]["code"]) == (409, "materials_closed")
    status, body = await _status(client, bids_url, ready.experts[late])
    assert (status, body["error"]["code"]) == (403, "not_a_reader")

    await check_in_all(client, raw_conn, ready, only=[late])
    await post(client, url + "/start", agent, None, 200)

    # a member sees every opened bid of the lot with its documents, as the opening listed them
    status, bids = await _status(client, bids_url, ready.experts[late])
    assert status == 200
    assert len(bids) == 4 and {b["bidder"] for b in bids} == {
        r["public_id"] for r in await raw_conn.fetch(
            "SELECT o.public_id FROM organisation o JOIN bid b ON b.organisation_id = o.id "
            "JOIN lot l ON l.id = b.lot_id WHERE l.public_id = $1", ready.info.lot_id)}
    listed = {d["sha256"]: d for b in bids for d in b["documents"]}
    assert set(listed) == set(BY_DIGEST)
    for digest, doc in listed.items():
        assert (doc["name"], doc["size"]) == (BY_DIGEST[digest][0], len(BY_DIGEST[digest][1]))
    assert await _reads(raw_conn) == []  # the list is in the public opening record already: not logged

    # a member downloads a document: the bytes the bidder sealed, named, and the read on the ledger
    bid = bids[2]
    licence = next(d for d in bid["documents"] if d["name"].endswith("营业执照.pdf"))
    resp = await client.get(licence["url"], headers=ready.experts[early[1]].headers)
    assert resp.status == 200
    data = await resp.read()
    assert data == BY_DIGEST[licence["sha256"]][1]
    assert resp.headers["Content-Disposition"] == "attachment; filename*=UTF-8''" + quote("营业执照.pdf")
    assert resp.headers["X-Content-SHA256"] == licence["sha256"] == hashlib.sha256(data).hexdigest()
    member_of = {e: m for m, e in (await member_experts(raw_conn, ready.session_id)).items()}
    [read] = await _reads(raw_conn)
    assert read == {"member": member_of[early[1]], "bid": bid["bid_id"], "bidder": bid["bidder"],
                    "document": "资格证明/营业执照.pdf", "sha256": licence["sha256"], "size": licence["size"]}
    assert await raw_conn.fetchval("SELECT actor FROM audit_entry WHERE action = 'evaluation.materials.read'") \
        == ready.experts[early[1]].public_id

    # nobody outside the committee reads: the agent, the supervisor, an admin, the bidders (their own bid too),
    # an expert of the pool who is not on this committee, and no one signed out
    outsiders = {"agent": agent, "supervisor": ready.supervisor, "admin": admin,
                 "bidder of this bid": ready.info.bidders[2], "another bidder": ready.outsider,
                 "expert not on the committee": next(a for e, a in ready.experts.items() if e not in on_committee),
                 "another agent": await staff(sessions, client, "agent")}
    for who, actor in outsiders.items():
        for target in (bids_url, licence["url"]):
            status, body = await _status(client, target, actor)
            assert (status, body["error"]["code"]) == (403, "not_a_reader"), who
    for target in (bids_url, licence["url"]):
        assert (await _status(client, target))[0] == 401
    member = ready.experts[late]
    for target, code in ((f"/api/v1/evaluation-sessions/ES-NOSUCH1/bids", "session_not_found"),
                         (f"{bids_url}/B-NOSUCHBID/documents/1", "bid_not_found"),
                         (f"{bids_url}/{bid['bid_id']}/documents/9", "document_not_found")):
        status, body = await _status(client, target, member)
        assert (status, body["error"]["code"]) == (404, code)

    # a suspended session is not read from; once resumed it is again
    await post(client, url + "/suspend", ready.supervisor, {"reason": "副场网络中断"}, 200)
    status, body = await _status(client, licence["url"], member)
    assert (status, body["error"]["code"]) == (409, "materials_closed")
    await post(client, url + "/resume", ready.supervisor, {"note": "网络恢复"}, 200)
    status, body = await _status(client, licence["url"], member)
    assert status == 200 and body == BY_DIGEST[licence["sha256"]][1]
    # refusals left nothing on the ledger: two reads, both by members
    assert [r["member"] for r in await _reads(raw_conn)] == [member_of[early[1]], member_of[late]]
