"""Demo tenders: realistic Chinese titles across Guangdong cities and categories, searchable and in order."""
import io

from rich.console import Console
from rich.progress import Progress

from tests.helpers import staff
from trading.routes import seed_demo


async def test_demo_seeding_makes_searchable_public_tenders_with_unique_codes(client, sessions, raw_conn):
    await staff(sessions, client, "agent", username="agent")
    console = Console(file=io.StringIO())
    with Progress(console=console) as progress:
        await seed_demo(sessions, console, progress, {"tenders": 60})
    rows = await raw_conn.fetch("SELECT code, title, region_code, family, status FROM tender")
    assert len(rows) == 60 and len({r["code"] for r in rows}) == 60
    assert len({r["region_code"] for r in rows}) >= 10 and len({r["family"] for r in rows}) >= 3
    assert all(r["code"].startswith(r["region_code"] + "-") for r in rows)
    assert await raw_conn.fetchval("SELECT count(*) FROM lot") == 60
    zs = {r["code"] for r in rows if "中山" in r["title"]}
    page = await (await client.get("/api/v1/tenders", params={"q": "中山", "limit": "100"})).json()
    assert {item["code"] for item in page["items"]} >= zs
    # the sequence moved on, so a real tender made later gets a fresh code
    seq = await raw_conn.fetchval("SELECT sum(last_seq) FROM tender_sequence")
    assert seq == 60
