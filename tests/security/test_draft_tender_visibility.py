"""A draft tender exists only for its agents (and admins): every route that takes its code answers strangers as
if the code named nothing, so the opening, results and key-share routes do not confirm that a draft exists or
tell its status."""
from __future__ import annotations

from tests.helpers import bidder, staff
from tests.integration.expert_pool.conftest import organisation, tender_with_lot

READERS = ("opening", "opened-bids", "candidates", "objections")


async def test_a_drafts_opening_and_results_routes_are_404_to_strangers(client, sessions):
    agent = await staff(sessions, client, "agent", organisation_public_id=await organisation(sessions))
    draft = await tender_with_lot(sessions, agent, status="draft")
    stranger = await bidder(client)
    other_agent = await staff(sessions, client, "agent", organisation_public_id=await organisation(sessions))
    for who in (None, stranger, other_agent):
        headers = who.headers if who else {}
        for route in READERS:
            resp = await client.get(f"/api/v1/tenders/{draft.code}/{route}", headers=headers)
            body = await resp.json()
            assert resp.status == 404 and body["error"]["code"] == "tender_not_found", (route, body)
            assert "draft" not in str(body)
        if who is not None:
            resp = await client.post(f"/api/v1/tenders/{draft.code}/opening/shares", headers=headers,
                                     json={"passphrase": "a passphrase of some length"})
            body = await resp.json()
            assert resp.status == 404 and body["error"]["code"] == "tender_not_found", body
    # its agent still reaches them
    resp = await client.get(f"/api/v1/tenders/{draft.code}/opening", headers=agent.headers)
    assert resp.status == 200 and (await resp.json())["status"] == "draft"
    resp = await client.get(f"/api/v1/tenders/{draft.code}/candidates", headers=agent.headers)
    assert resp.status == 200
