"""Key holders and sealing a tender at publish."""
from __future__ import annotations

import pyrage
import pytest
from sqlalchemy import select

from core import identity_service
from core.errors import Conflict, Unprocessable
from evidence import sealing
from tests.helpers import social_credit_code
from tests.integration.trading_bids.conftest import PASSPHRASES, add_holders, draft_tender, publish
from trading import keyholding
from trading.models import Tender, TenderKeyHolder


async def test_publishing_splits_the_tender_key_among_its_holders_and_keeps_no_identity(
        sessions, client, wrapped_holder_keys):
    info = await draft_tender(sessions, client, bidders=0)
    await add_holders(sessions, client, info, wrapped_holder_keys, k=2)
    recipient = await publish(sessions, info)
    assert recipient.startswith("age1")
    async with sessions() as session:
        rows = list((await session.execute(select(TenderKeyHolder).where(
            TenderKeyHolder.tender_id == info.tender_id).order_by(TenderKeyHolder.position))).scalars())
    assert len(rows) == 3 and all(r.encrypted_share.startswith(sealing.AGE_MAGIC) for r in rows)
    # two of the three holders unlock their personal keys, then their shares
    shares = []
    for row, (_, wrapped), passphrase in list(zip(rows, wrapped_holder_keys, PASSPHRASES))[:2]:
        identity = keyholding.unwrap_holder_identity(wrapped, passphrase)
        shares.append(pyrage.decrypt(row.encrypted_share, [pyrage.x25519.Identity.from_str(identity)]))
    with pytest.raises(Unprocessable):
        sealing.combine_shares(shares[:1], recipient)
    rebuilt = pyrage.x25519.Identity.from_str(sealing.combine_shares(shares, recipient))
    assert str(rebuilt.to_public()) == recipient


async def test_publishing_without_enrolled_holders_is_refused(sessions, client):
    info = await draft_tender(sessions, client, bidders=0)
    async with sessions() as session, session.begin():
        tender = await session.get(Tender, info.tender_id)
        with pytest.raises(Conflict) as caught:
            await keyholding.seal_at_publish(session, tender, actor="system")
    assert caught.value.code == "key_holders_not_ready"


async def test_a_holder_enrols_over_the_api_and_weak_passphrases_are_refused(client, sessions):
    from tests.helpers import staff
    supervisor = await staff(sessions, client, "supervisor")
    resp = await client.post("/api/v1/me/holder-key", json={"passphrase": "short"}, headers=supervisor.headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "weak_passphrase"
    resp = await client.get("/api/v1/me/holder-key", headers=supervisor.headers)
    assert resp.status == 404
    resp = await client.post("/api/v1/me/holder-key", json={"passphrase": "a-long-enough-passphrase"},
                             headers=supervisor.headers)
    assert resp.status == 201
    recipient = (await resp.json())["recipient"]
    mine = await (await client.get("/api/v1/me/holder-key", headers=supervisor.headers)).json()
    assert recipient.startswith("age1") and mine["recipient"] == recipient


async def test_key_holders_are_named_by_the_tender_agent_with_a_sound_threshold(
        sessions, client, wrapped_holder_keys, raw_conn):
    from tests.helpers import staff
    from tests.integration.trading_bids.conftest import enrol
    info = await draft_tender(sessions, client, bidders=1)
    other = await staff(sessions, client, "supervisor", organisation_public_id=info.supervision)
    await enrol(sessions, info.agent, wrapped_holder_keys[0])
    url = f"/api/v1/tenders/{info.code}/key-holders"
    holders = [info.agent.public_id, other.public_id]
    resp = await client.put(url, json={"holders": holders, "threshold": 2}, headers=info.agent.headers)
    assert resp.status == 409 and (await resp.json())["error"]["details"]["holders"] == [other.public_id]
    await enrol(sessions, other, wrapped_holder_keys[1])
    resp = await client.put(url, json={"holders": holders, "threshold": 3}, headers=info.agent.headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid_threshold"
    resp = await client.put(url, json={"holders": holders, "threshold": 2}, headers=info.bidders[0].headers)
    assert resp.status == 403
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_key_holder") == 0
    resp = await client.put(url, json={"holders": holders, "threshold": 2}, headers=info.agent.headers)
    assert resp.status == 200
    assert [h["holder"] for h in (await resp.json())["holders"]] == holders
    await publish(sessions, info)
    resp = await client.put(url, json={"holders": holders, "threshold": 2}, headers=info.agent.headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_draft"


async def test_only_supervisors_of_the_tenders_supervising_organisation_hold_its_keys(
        sessions, client, wrapped_holder_keys, raw_conn):
    """招标投标法实施条例 第4条: supervision is per tender; another organisation's supervisor is a stranger to it."""
    from tests.helpers import staff
    from tests.integration.trading_bids.conftest import enrol
    info = await draft_tender(sessions, client, bidders=0)
    async with sessions() as session, session.begin():
        elsewhere = await identity_service.create_organisation(
            session, actor="system", name="佛山市公共资源交易监督管理局", social_credit_code=social_credit_code())
    stranger = await staff(sessions, client, "supervisor", organisation_public_id=elsewhere.public_id)
    ours = await staff(sessions, client, "supervisor", organisation_public_id=info.supervision)
    for actor, pair in ((info.agent, wrapped_holder_keys[0]), (stranger, wrapped_holder_keys[1]),
                        (ours, wrapped_holder_keys[2])):
        await enrol(sessions, actor, pair)
    url = f"/api/v1/tenders/{info.code}/key-holders"
    resp = await client.put(url, json={"holders": [info.agent.public_id, stranger.public_id], "threshold": 2},
                            headers=info.agent.headers)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "supervisor_not_of_tender"
    assert body["error"]["details"]["holders"] == [stranger.public_id]
    assert await raw_conn.fetchval("SELECT count(*) FROM tender_key_holder") == 0
    resp = await client.put(url, json={"holders": [info.agent.public_id, ours.public_id], "threshold": 2},
                            headers=info.agent.headers)
    assert resp.status == 200, await resp.text()
