"""Who may hold a tender's key, and enrolment under load.

- Only agents and supervisors enrol a holder key or are named key holders.
- A tender's person holders come from at least two organisations.
- k counts people, at least two: the platform's share never counts as a person (test_opening_needs_k_people.py
  shows that k - 1 people with it cannot open).
- Enrolments wait for scrypt in a bounded gate (429 with Retry-After when full) and hold no database
  connection while they wait; every app connection has a statement and an idle-in-transaction timeout.
"""
from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from core import identity_service
from tests.helpers import bidder, social_credit_code, staff
from tests.integration.trading_bids.conftest import draft_tender, enrol, user_row
from trading import keyholding
from web.keys import ENGINE, PG_POOL

HOLDER_KEY = "/api/v1/me/holder-key"


def key_holders_url(info) -> str:
    return f"/api/v1/tenders/{info.code}/key-holders"


async def _holder_rows(raw_conn) -> int:
    return await raw_conn.fetchval("SELECT count(*) FROM tender_key_holder")


async def test_only_agents_and_supervisors_enrol_a_holder_key(client, sessions, raw_conn):
    refused = [await bidder(client), await staff(sessions, client, "expert"), await staff(sessions, client, "admin"),
               await staff(sessions, client, "purchaser")]
    for actor in refused:
        resp = await client.post(HOLDER_KEY, json={"passphrase": "a-long-enough-passphrase"}, headers=actor.headers)
        body = await resp.json()
        assert resp.status == 403, body
        assert body["error"]["code"] == "role_forbidden"
        assert sorted(body["error"]["details"]["needs_one_of"]) == ["agent", "supervisor"]
    assert await raw_conn.fetchval("SELECT count(*) FROM holder_key WHERE kind = 'person'") == 0
    agent = await staff(sessions, client, "agent")
    resp = await client.post(HOLDER_KEY, json={"passphrase": "a-long-enough-passphrase"}, headers=agent.headers)
    assert resp.status == 201, await resp.text()
    entries = await raw_conn.fetch("SELECT actor FROM audit_entry WHERE action = 'holder_key.enrol'")
    assert [e["actor"] for e in entries] == [agent.public_id]


async def test_one_person_with_the_platform_share_cannot_hold_the_whole_key(
        sessions, client, wrapped_holder_keys, raw_conn):
    info = await draft_tender(sessions, client, bidders=0, platform_share=True)
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=info.supervision)
    await enrol(sessions, info.agent, wrapped_holder_keys[0])
    await enrol(sessions, supervisor, wrapped_holder_keys[1])
    url = key_holders_url(info)
    # k counts people: the agent alone, with the platform's share beside them, is one person
    for k in (1, 2):
        resp = await client.put(url, json={"holders": [info.agent.public_id], "threshold": k},
                                headers=info.agent.headers)
        body = await resp.json()
        assert resp.status == 422 and body["error"]["code"] == "invalid_threshold", body
        assert (body["error"]["details"]["n"], body["error"]["details"]["min_people"]) == (1, 2)
        assert "第28条" in body["error"]["message"]
    assert await _holder_rows(raw_conn) == 0
    # two people of two organisations, k = 2: both are needed, the platform's share is held beside them
    both = [info.agent.public_id, supervisor.public_id]
    resp = await client.put(url, json={"holders": both, "threshold": 2}, headers=info.agent.headers)
    assert resp.status == 200, await resp.text()
    assert [h["holder"] for h in (await resp.json())["holders"]] == [*both, "platform"]
    # k and n count people: 2 of 2, and the platform's share makes three shares with a threshold of three
    assert tuple(await raw_conn.fetchrow("SELECT key_threshold, key_holder_count FROM tender WHERE id = $1",
                                         info.tender_id)) == (2, 2)


async def test_key_holders_come_from_two_organisations_and_hold_a_key_holding_role(
        sessions, client, wrapped_holder_keys, raw_conn):
    info = await draft_tender(sessions, client, bidders=1)
    first = await staff(sessions, client, "supervisor", organisation_public_id=info.supervision)
    second = await staff(sessions, client, "supervisor", organisation_public_id=info.supervision)
    await enrol(sessions, first, wrapped_holder_keys[0])
    await enrol(sessions, second, wrapped_holder_keys[1])
    url = key_holders_url(info)
    resp = await client.put(url, json={"holders": [first.public_id, second.public_id], "threshold": 2},
                            headers=info.agent.headers)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "key_holders_one_organisation"
    # a bidder's account with a holder key slipped in behind the API is still not a key holder
    stranger = info.bidders[0]
    async with sessions() as session, session.begin():
        user = await user_row(session, stranger.public_id)
        await keyholding.store_holder_key(session, user, wrapped_holder_keys[2][0], wrapped_holder_keys[2][1],
                                          actor="system")
    resp = await client.put(url, json={"holders": [first.public_id, stranger.public_id], "threshold": 2},
                            headers=info.agent.headers)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "key_holder_role"
    assert body["error"]["details"]["holders"] == [stranger.public_id]
    assert await _holder_rows(raw_conn) == 0
    await enrol(sessions, info.agent, wrapped_holder_keys[2])
    resp = await client.put(url, json={"holders": [info.agent.public_id, first.public_id], "threshold": 2},
                            headers=info.agent.headers)
    assert resp.status == 200, await resp.text()


async def test_a_tender_drafted_with_the_platform_share_counts_people_only(client, sessions):
    async with sessions() as session, session.begin():
        agency = await identity_service.create_organisation(session, actor="system", name="中山市明信招标代理有限公司",
                                                            social_credit_code=social_credit_code())
        tenderer = await identity_service.create_organisation(session, actor="system", name="中山市第三人民医院",
                                                              social_credit_code=social_credit_code())
        agency_id, tenderer_id = agency.public_id, tenderer.public_id
    agent = await staff(sessions, client, "agent", organisation_public_id=agency_id)
    from tests.integration.trading.conftest import draft_body
    body = draft_body(tenderer_id, key_threshold=1, key_holder_count=2, platform_holds_share=True)
    resp = await client.post("/api/v1/tenders", json=body, headers=agent.headers)
    answer = await resp.json()
    assert resp.status == 422 and answer["error"]["code"] == "invalid_key_split", answer
    assert "第28条" in answer["error"]["message"]
    body = draft_body(tenderer_id, key_threshold=2, key_holder_count=2, platform_holds_share=True)
    resp = await client.post("/api/v1/tenders", json=body, headers=agent.headers)
    assert resp.status == 201, await resp.text()
    code = (await resp.json())["code"]
    shown = await (await client.get(f"/api/v1/tenders/{code}", headers=agent.headers)).json()
    assert (shown["key_threshold"], shown["key_holder_count"]) == (2, 2)
    resp = await client.patch(f"/api/v1/tenders/{code}", json={"key_threshold": 3}, headers=agent.headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid_key_split"


async def test_a_full_enrolment_gate_answers_429_and_no_connection_waits_in_a_transaction(
        settings, sessions, raw_conn):
    from web.app import create_app
    client = TestClient(TestServer(create_app(settings.with_(holder_key_queue=1))))
    await client.start_server()
    try:
        holders = [await staff(sessions, client, "supervisor") for _ in range(3)]
        idle_in_transaction = []

        async def watch(done: asyncio.Event) -> None:
            while not done.is_set():
                idle_in_transaction.append(await raw_conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'bidroom' AND state LIKE 'idle in transaction%' "
                    # the store transaction after the wrap is idle for moments between its statements; a
                    # transaction waiting on scrypt (~1.6 s a job, after the pool's start) would sit idle for seconds
                    "AND now() - state_change > interval '1.5 seconds'"))
                await asyncio.sleep(0.05)

        async def enrol_one(actor):
            resp = await client.post(HOLDER_KEY, json={"passphrase": "a-long-enough-passphrase"},
                                     headers=actor.headers)
            return resp.status, await resp.json(), resp.headers.get("Retry-After")

        done = asyncio.Event()
        watcher = asyncio.create_task(watch(done))
        answers = await asyncio.gather(*[enrol_one(a) for a in holders])
        done.set()
        await watcher
        assert sorted(status for status, _, _ in answers) == [201, 429, 429]
        for status, body, retry_after in answers:
            if status == 429:
                assert body["error"]["code"] == "holder_key_busy" and int(retry_after) >= 1
        assert idle_in_transaction and max(idle_in_transaction) == 0
        assert await raw_conn.fetchval("SELECT count(*) FROM holder_key WHERE kind = 'person'") == 1
        # the gate is free again: a refused holder enrols now
        refused = next(a for a, (status, _, _) in zip(holders, answers) if status == 429)
        status, _, _ = await enrol_one(refused)
        assert status == 201

    finally:
        await client.close()


async def test_every_pooled_connection_has_a_statement_and_an_idle_in_transaction_timeout(client):
    """core.db.server_settings on the ORM engine's pool and on the raw asyncpg pool alike: a statement running
    over a minute is cancelled, and a transaction left idle over two minutes is ended by the server."""
    from sqlalchemy import text
    async with client.app[ENGINE].connect() as conn:
        assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == "1min"
        assert (await conn.execute(text("SHOW idle_in_transaction_session_timeout"))).scalar_one() == "2min"
    async with client.app[PG_POOL].acquire() as conn:
        assert await conn.fetchval("SHOW statement_timeout") == "1min"
        assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "2min"
