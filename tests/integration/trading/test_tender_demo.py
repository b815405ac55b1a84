"""Demo tenders: realistic Chinese titles across Guangdong cities and categories, searchable and in order."""
import io

from rich.console import Console
from rich.progress import Progress

from tests.helpers import staff, submit_share
from tests.integration.trading.conftest import organisation
from trading.routes.tenders import seed_demo


async def test_demo_seeding_makes_searchable_public_tenders_with_unique_codes(client, sessions, raw_conn):
    await staff(sessions, client, "agent", username="agent", organisation_public_id=await organisation(sessions))
    await staff(sessions, client, "supervisor", username="supervisor",
                organisation_public_id=await organisation(sessions, "中山市公共资源交易监督管理局"))
    console = Console(file=io.StringIO())
    with Progress(console=console) as progress:
        await seed_demo(sessions, console, progress, {"tenders": 60, "showcase": 0})
    rows = await raw_conn.fetch("SELECT id, code, title, region_code, family, status, age_recipient FROM tender")
    assert len(rows) == 60 and len({r["code"] for r in rows}) == 60
    # made as the agent makes a real tender: drafted, sealed to the agent and the supervisor, published, and one
    # in 16 cancelled with its reason; each step on the ledger, nothing in a state no walk has reached
    assert {r["status"] for r in rows} == {"published", "cancelled"}
    assert sum(r["status"] == "cancelled" for r in rows) == 60 // 16
    assert all(r["age_recipient"].startswith("age1") for r in rows)
    for action, count in (("tender.create", 60), ("tender.sealed", 60), ("tender.published", 60),
                          ("tender.cancelled", 60 // 16)):
        assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = $1", action) == count, action
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'tender.demo_seed'") == 0
    assert len({r["region_code"] for r in rows}) >= 10 and len({r["family"] for r in rows}) >= 3
    assert all(r["code"].startswith(r["region_code"] + "-") for r in rows)
    assert await raw_conn.fetchval("SELECT count(*) FROM lot") == 60
    zs = {r["code"] for r in rows if "中山" in r["title"]}
    page = await (await client.get("/api/v1/tenders", params={"q": "中山", "limit": "100"})).json()
    assert {item["code"] for item in page["items"]} >= zs
    # the sequence moved on, so a real tender made later gets a fresh code
    seq = await raw_conn.fetchval("SELECT sum(last_seq) FROM tender_sequence")
    assert seq == 60


async def test_a_demo_bidder_bids_on_a_sealed_showcase_tender_that_the_demo_agent_and_supervisor_open(
        settings, sessions, client, raw_conn):
    import pyotp

    from tests.helpers import auth, login
    from trading.bundle import make_bundle
    from trading.demo import DEMO_HOLDER_PASSPHRASE, SHOWCASE
    from web.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
    from web.demo import seed_demo as seed_everything

    out = io.StringIO()
    await seed_everything(settings, console=Console(file=out, width=200), only_if_empty=True, tenders=2, experts=0)
    assert DEMO_HOLDER_PASSPHRASE in out.getvalue()
    showcase = await raw_conn.fetch(
        "SELECT id, code, title, status, age_recipient, key_threshold, key_holder_count FROM tender "
        "WHERE title = ANY($1::text[]) ORDER BY id", [spec.title for spec in SHOWCASE])
    assert [r["title"] for r in showcase] == [spec.title for spec in SHOWCASE]
    for row in showcase:
        assert row["status"] == "published" and row["age_recipient"].startswith("age1")
        assert (row["key_threshold"], row["key_holder_count"]) == (2, 2)
        holders = await raw_conn.fetch(
            "SELECT u.username FROM tender_key_holder h JOIN app_user u ON u.id = h.user_id "
            "WHERE h.tender_id = $1 AND h.encrypted_share IS NOT NULL ORDER BY h.position", row["id"])
        assert [h["username"] for h in holders] == ["agent", "supervisor"]
    biddable, to_register = showcase[0], showcase[1]
    assert await raw_conn.fetchval("SELECT count(*) FROM bidder_registration WHERE tender_id = $1",
                                   biddable["id"]) == 4 * len(SHOWCASE[0].lots)
    assert await raw_conn.fetchval("SELECT count(*) FROM bidder_registration WHERE tender_id = $1",
                                   to_register["id"]) == 0
    sealed = await raw_conn.fetchval("SELECT count(*) FROM audit_entry WHERE action = 'tender.sealed'")
    assert sealed == len(SHOWCASE) + 2  # the two listing tenders are sealed too

    # seeding the trading demo again makes no second showcase and no new holder key
    tenders, keys = (await raw_conn.fetchval("SELECT count(*) FROM tender"),
                     await raw_conn.fetchval("SELECT count(*) FROM holder_key"))
    console = Console(file=io.StringIO())
    with Progress(console=console) as progress:
        await seed_demo(sessions, console, progress, {"tenders": 0})
    assert await raw_conn.fetchval("SELECT count(*) FROM tender") == tenders
    assert await raw_conn.fetchval("SELECT count(*) FROM holder_key") == keys

    code = biddable["code"]
    lot = await raw_conn.fetchval("SELECT public_id FROM lot WHERE tender_id = $1 AND lot_no = 1", biddable["id"])
    prices = {"bidder1": "8100000.00", "bidder2": "7950000.50", "bidder3": "8230000.00"}
    for username, price in prices.items():
        tokens = await login(client, username, DEMO_PASSWORD)
        resp = await client.put(f"/api/v1/tenders/{code}/lots/{lot}/bid",
                                data=make_bundle({"price": price, "duration_days": 120, "declared": {}},
                                                 {"投标函.pdf": b"%PDF-1.7 demo"}),
                                headers={**auth(tokens), "Content-Type": "application/octet-stream"})
        body = await resp.json()
        assert resp.status == 201, body
        assert body["receipt"]["tender"] == code and body["signature"]

    # the deadline passes; the demo agent starts the opening and both holders unlock with the demo passphrase
    await raw_conn.execute(
        "UPDATE tender SET published_at = now() - interval '2 days', clarification_end_at = now() - interval "
        "'1 day', bid_deadline_at = now() - interval '1 second', opening_at = now() WHERE id = $1", biddable["id"])
    secrets = {username: secret for username, _, _, secret, _ in DEMO_ACCOUNTS}
    agent, supervisor = [auth(await login(client, u, DEMO_PASSWORD, pyotp.TOTP(secrets[u]).now()))
                         for u in ("agent", "supervisor")]
    resp = await client.post(f"/api/v1/tenders/{code}/opening", headers=agent)
    assert resp.status == 200 and (await resp.json())["status"] == "opening"
    for headers in (supervisor, agent):
        status, body = await submit_share(client, code, headers, DEMO_HOLDER_PASSPHRASE)
        assert status == 200, body
    assert body["status"] == "opened" and body["valid_bids"] == 3 and body["record_no"]
    opened = (await (await client.get(f"/api/v1/tenders/{code}/opened-bids")).json())["bids"]
    assert sorted(row["price"] for row in opened) == sorted(prices.values())
