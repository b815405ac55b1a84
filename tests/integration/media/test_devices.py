"""Room cameras (全景) are published by a device account of the room's site: an admin creates the device with a
credential, the box trades it for an access token and publishes the camera, recorded and watched like a place.
The device may do nothing else (another site's room, a member's place, watching, any other API), an admin no
longer stands in for it, and a revoked credential ends its access. Every issuance and revocation is in the
ledger."""
import json

from evaluation.media.routes import MEDIA_HUB

from .peers import publish, until, ws_url
from .test_authorization import refused
from .test_faults import playable
from .test_recording import all_closed


async def test_a_site_device_publishes_its_room_camera_and_nothing_else(client, raw_conn, settings, live):
    admin = live.admin
    other_site_camera = live.sub_camera_place  # the sub venue's (副场) room camera, another site's
    site = await raw_conn.fetchval("SELECT s.public_id FROM venue_site s JOIN venue_room r ON r.site_id = s.id "
                                   "JOIN venue_place p ON p.room_id = r.id WHERE p.public_id = $1", live.camera_place)

    # only an admin adds a device; its secret is shown once
    resp = await client.post(f"/api/v1/sites/{site}/devices", json={"name": "全景摄像机"}, headers=live.supervisor.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (403, "role_forbidden")
    resp = await client.post(f"/api/v1/sites/{site}/devices", json={"name": "全景摄像机"},
                             headers={**admin.headers, "Idempotency-Key": "camera-box-1"})
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    device, secret = created["device"]["device_id"], created["secret"]
    assert created["device"]["site_id"] == site and [c["credential_id"] for c in created["device"]["credentials"]] \
        == [created["credential_id"]]
    # the secret is kept nowhere: not as itself, not in a stored answer for replay
    assert await raw_conn.fetchval("SELECT count(*) FROM media_device_credential WHERE secret_hash = $1", secret) == 0
    assert await raw_conn.fetchval("SELECT count(*) FROM idempotent_request WHERE body::text LIKE '%' || $1 || '%'",
                                   secret) == 0

    token_url = "/api/v1/media/devices/token"
    resp = await client.post(token_url, json={"device_id": device, "secret": secret + "x"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "device_credentials_invalid")
    resp = await client.post(token_url, json={"device_id": device, "secret": secret})
    assert resp.status == 200, await resp.text()
    token = (await resp.json())["access_token"]
    box = {"Authorization": f"Bearer {token}"}

    # nothing but its own site's room camera
    for place in (other_site_camera, live.members[0].place_id):  # another site's room; a member's place
        code, got, _ = await refused(client, ws_url(live.session_id, f"places/{place}/publish"), box)
        assert (code, got) == (4403, "device_forbidden"), place
    for tail in ("watch", "conference"):  # the token as the first message, as a browser sends it
        code, got, _ = await refused(client, ws_url(live.session_id, tail), first={"type": "auth", "token": token})
        assert (code, got) == (4403, "device_forbidden"), tail
    for method, url in (("GET", ws_url(live.session_id, "watch")), ("GET", ws_url(live.session_id, "conference")),
                        ("GET", f"/api/v1/media/sessions/{live.session_id}/health"), ("GET", "/api/v1/sites"),
                        ("GET", "/api/v1/tenders"), ("POST", f"/api/v1/sites/{site}/devices")):
        resp = await client.request(method, url, headers=box, json={"name": "x"} if method == "POST" else None)
        assert (resp.status, (await resp.json())["error"]["code"]) == (403, "device_forbidden"), url
    # an admin no longer stands in for a device
    code, got, _ = await refused(client, ws_url(live.session_id, f"places/{live.camera_place}/publish"),
                                 admin.headers)
    assert (code, got) == (4403, "media_forbidden")

    # its camera: published, watched in the health view and recorded like a place
    pub = await publish(client, live.session_id, live.camera_place, box)
    hub = client.server.app[MEDIA_HUB]

    def sent() -> int:
        current = hub.publication(live.session_id, live.camera_place)
        return current.packets["video"] if current else 0
    assert await until(lambda: sent() > 15, 10)
    health = await (await client.get(f"/api/v1/media/sessions/{live.session_id}/health",
                                     headers=live.supervisor.headers)).json()
    row = next(p for p in health["places"] if p["place"] == live.camera_place)
    assert row["publishing"] is True and row["camera"] is True and row["member"] is None
    await pub.close()
    rows = await all_closed(raw_conn, live.session_id)
    assert rows and {r["place"] for r in rows} == {live.camera_place}
    for r in rows:
        playable(settings.data_dir / "media", r)
    timeline = await (await client.get(f"/api/v1/evaluation-sessions/{live.session_id}/timeline",
                                       headers=live.supervisor.headers)).json()
    on_line = next(p for p in timeline["places"] if p["place_id"] == live.camera_place)
    assert [s["segment_id"] for s in on_line["segments"]] == [r["public_id"] for r in rows]
    account = await raw_conn.fetchval("SELECT u.public_id FROM app_user u JOIN media_device d ON d.user_id = u.id "
                                      "WHERE d.public_id = $1", device)
    assert await raw_conn.fetchval("SELECT actor FROM audit_entry WHERE action = 'evaluation.media.segment_opened'") \
        == account

    # revoked: the credential trades no more and the token it gave is refused
    resp = await client.post(f"/api/v1/media/devices/{device}/credentials/{created['credential_id']}/revoke",
                             headers=admin.headers)
    assert resp.status == 200 and (await resp.json())["credentials"][0]["revoked_at"] is not None
    resp = await client.post(token_url, json={"device_id": device, "secret": secret})
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "device_credential_revoked")
    camera_url = ws_url(live.session_id, f"places/{live.camera_place}/publish")
    resp = await client.get(camera_url, headers=box)
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "token_revoked")
    code, got, _ = await refused(client, camera_url, first={"type": "auth", "token": token})
    assert (code, got) == (4401, "token_revoked")

    ledger = [(r["action"], json.loads(r["payload"]).get("credential")) for r in await raw_conn.fetch(
        "SELECT action, payload FROM audit_entry WHERE entity = $1 ORDER BY seq", f"media_device:{device}")]
    assert ledger == [("media.device.create", None), ("media.device.credential_issue", created["credential_id"]),
                      ("auth.device_token", created["credential_id"]),
                      ("media.device.credential_revoke", created["credential_id"])]
