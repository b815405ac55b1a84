"""The demo seeds the seed case's two centres with rooms, places and camera positions, once."""
import io

from rich.console import Console
from rich.progress import Progress

from evaluation.demo import seed_demo
from tests.helpers import bidder, staff


async def test_the_demo_seeds_the_guangzhou_and_zhongshan_centres_once(client, sessions, raw_conn):
    admin = await staff(sessions, client, "admin", username="admin")
    out = io.StringIO()
    console = Console(file=out, width=160)
    with Progress(console=console) as progress:
        await seed_demo(sessions, console, progress, {})
    someone = await bidder(client)
    sites = await (await client.get("/api/v1/sites", headers=someone.headers)).json()
    by_region = {s["region_code"]: s for s in sites}
    assert {r: s["name"] for r, s in by_region.items()} == {"440100": "广东省公共资源交易中心",
                                                           "442000": "中山市公共资源交易中心"}
    zhongshan = by_region["442000"]["rooms"][0]
    assert [p["label"] for p in zhongshan["places"] if not p["camera_position"]] == ["B-01", "B-02", "B-03", "B-04"]
    assert [p["label"] for p in zhongshan["places"] if p["camera_position"]] == ["B-CAM"]
    assert len(by_region["440100"]["rooms"]) == 2
    assert "中山市公共资源交易中心" in out.getvalue()
    assert {r["actor"] for r in await raw_conn.fetch("SELECT actor FROM audit_entry WHERE action LIKE 'venue.%'")} \
        == {admin.public_id}

    entries = await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
    again = io.StringIO()
    with Progress(console=Console(file=again)) as progress:
        await seed_demo(sessions, Console(file=again), progress, {})
    assert "already seeded" in again.getvalue()
    assert await raw_conn.fetchval("SELECT count(*) FROM venue_site") == 2
    assert await raw_conn.fetchval("SELECT count(*) FROM audit_entry") == entries
