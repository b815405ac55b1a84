"""The demo, walked as its users would: the agent requests an expert draw for a showcase tender, the supervisor
supplies the entropy, and every drawn expert signs in with the demo login and accepts, so the committee forms."""
import io
from datetime import datetime, timedelta, timezone

import pyotp
from rich.console import Console

from tests.helpers import Actor, auth, login
from trading.demo import SHOWCASE
from web.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, seed_demo

SECRETS = {username: secret for username, _name, _roles, secret, _org in DEMO_ACCOUNTS}


async def sign_in(client, username: str) -> Actor:
    secret = SECRETS.get(username)
    tokens = await login(client, username, DEMO_PASSWORD, pyotp.TOTP(secret).now() if secret else None)
    return Actor(auth(tokens), "", username, tokens)


async def usernames_by_account(client, admin: Actor) -> dict[str, str]:
    """The admin's view of every account: user public id -> username (keyset pages)."""
    out: dict[str, str] = {}
    path = "/api/v1/admin/users?limit=200"
    while path:
        page = await (await client.get(path, headers=admin.headers)).json()
        out.update({u["public_id"]: u["username"] for u in page["items"]})
        path = page["next"]
    return out


async def test_a_demo_draw_forms_its_committee_because_every_pool_expert_can_sign_in(settings, client):
    out = io.StringIO()
    await seed_demo(settings, console=Console(file=out, width=160), only_if_empty=True, tenders=2, experts=200)
    assert "expert001 … expert200" in out.getvalue()

    agent, supervisor, admin = [await sign_in(client, u) for u in ("agent", "supervisor", "admin")]

    # the agent finds the showcase works tender and requests a draw for its first lot
    found = await (await client.get("/api/v1/tenders", params={"q": "门诊楼"})).json()
    [tender] = [t for t in found["items"] if t["title"] == SHOWCASE[0].title]
    detail = await (await client.get(f"/api/v1/tenders/{tender['code']}", headers=agent.headers)).json()
    lot_id = detail["lots"][0]["lot_id"]
    session_at = (datetime.now(timezone.utc) + timedelta(days=6)).replace(microsecond=0).isoformat()
    resp = await client.post(f"/api/v1/lots/{lot_id}/draws", headers=agent.headers, json={
        "session_at": session_at, "venue": "中山市公共资源交易中心 3号评标室",
        "quotas": [{"name": "土建", "specialty": "A", "region": "440000", "count": 3, "backups": 2},
                   {"name": "造价", "specialty": "C", "region": "440000", "count": 2, "backups": 1}]})
    assert resp.status == 201, await resp.text()
    draw_id = (await resp.json())["draw_id"]

    # the supervisor supplies the entropy: the draw runs and the five primaries are invited
    resp = await client.post(f"/api/v1/draws/{draw_id}/entropy", headers=supervisor.headers,
                             json={"entropy": "5b1e9f0c3a7d42e8b6c1d0f2a4e69c73"})
    assert resp.status == 200, await resp.text()
    invitations = (await resp.json())["invitations"]
    assert len(invitations) == 5 and all(i["status"] == "pending" for i in invitations)

    # every drawn expert has a demo login (the admin looks it up on the expert's entry), signs in with the
    # demo password, finds the invitation in the inbox and accepts it
    logins = await usernames_by_account(client, admin)
    for invitation in invitations:
        entry = await (await client.get(f"/api/v1/experts/{invitation['expert_id']}", headers=admin.headers)).json()
        username = logins[entry["account"]]
        assert username.startswith("expert")
        expert = await sign_in(client, username)
        inbox = await (await client.get("/api/v1/notifications", headers=expert.headers)).json()
        assert [n["data"]["invitation_id"] for n in inbox if n["kind"] == "expert.invitation"] == [
            invitation["invitation_id"]]
        [mine] = await (await client.get("/api/v1/me/invitations", headers=expert.headers)).json()
        assert mine["invitation_id"] == invitation["invitation_id"] and mine["status"] == "pending"
        resp = await client.post(f"/api/v1/invitations/{invitation['invitation_id']}/accept", headers=expert.headers)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "accepted"

    state = await (await client.get(f"/api/v1/draws/{draw_id}", headers=supervisor.headers)).json()
    assert state["status"] == "formed" and state["committee_formed"]
    assert {q: c["accepted"] for q, c in state["confirmation"].items()} == {"土建": 3, "造价": 2}
