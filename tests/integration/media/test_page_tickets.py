"""A page's way to a session's media at a media worker (web.pages.media `ticket`): a signed-in page asks, with its
CSRF token, for the socket's URL at the process that serves the session and a media ticket of 60 s; the ticket
opens the media plane's sockets as an access token would, and the JSON API refuses it. With media workers on, the
URL is the owning worker's."""
import pyotp
from aiohttp.test_utils import TestClient, TestServer

from core import identity_service
from evaluation.media import worker as worker_mod
from tests.helpers import PASSWORD
from tests.integration.test_page_sessions import _form_token, _sign_in

from .peers import publish, until, watch


async def _page_supervisor(client, sessions, raw_conn, supervisor_public_id: str, username: str) -> str:
    """A supervisor of the same organisation as the session's, signed in on the pages; the page's CSRF token."""
    org = await raw_conn.fetchval("SELECT o.public_id FROM organisation o JOIN app_user u ON u.organisation_id = o.id "
                                  "WHERE u.public_id = $1", supervisor_public_id)
    async with sessions() as session, session.begin():
        user, _ = await identity_service.create_user(session, actor="system", username=username, password=PASSWORD,
                                                     display_name="监督员 林", roles=["supervisor"],
                                                     organisation_public_id=org)
        secret = user.totp_secret
    assert (await _sign_in(client, username, totp=pyotp.TOTP(secret).now())).status == 303
    return await _form_token(client, "/supervise")


async def test_a_page_ticket_opens_the_watch_socket_and_nothing_else(client, sessions, raw_conn, live):
    sid = live.session_id
    url = f"/sessions/{sid}/media/ticket"
    anonymous = await _form_token(client, "/signin")
    refused = await client.post(url, json={"socket": "watch"}, headers={"X-CSRF-Token": anonymous, "Accept": "application/json"})
    assert refused.status == 401  # not signed in
    token = await _page_supervisor(client, sessions, raw_conn, live.supervisor.public_id, "ticket-supervisor")
    assert (await client.post(url, json={"socket": "watch"})).status == 403  # no CSRF token
    bad = await client.post(url, json={"socket": "publish"}, headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert bad.status == 422 and (await bad.json())["error"]["code"] == "media_ticket_invalid"

    got = await client.post(url, json={"socket": "watch"}, headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert got.status == 200 and got.headers["Cache-Control"] == "no-store"
    ticket = await got.json()
    assert ticket["url"] == f"ws://127.0.0.1:8080/api/v1/media/sessions/{sid}/watch" and ticket["expires_in"] == 60

    # the JSON API does not take it
    api = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {ticket['token']}"})
    assert api.status == 401 and (await api.json())["error"]["code"] == "token_wrong_audience"

    # the media plane does: a viewer authenticated by the ticket alone receives a publishing place
    member = live.members[0]
    publisher = await publish(client, sid, member.place_id, member.person.headers)
    client.session.cookie_jar.clear()  # the socket has the ticket, not the page session
    viewer = await watch(client, sid, None, token=ticket["token"])
    try:
        assert await until(lambda: viewer.count(member.place_id, "video") > 10, 20)
    finally:
        await viewer.close()
        await publisher.close()


async def test_with_media_workers_the_ticket_points_at_the_sessions_worker(client, sessions, raw_conn, live,
                                                                         settings):
    async with sessions() as session, session.begin():
        await worker_mod.register(session, worker_id="media-1", base_url="https://media-1.example.cn:8443")
    app_settings = settings.with_(media_workers=True)
    from web.app import create_app
    tiered = TestClient(TestServer(create_app(app_settings)))
    await tiered.start_server()
    try:
        token = await _page_supervisor(tiered, sessions, raw_conn, live.supervisor.public_id, "tier-supervisor")
        member = live.members[1]
        got = await tiered.post(f"/sessions/{live.session_id}/media/ticket", headers={"X-CSRF-Token": token, "Accept": "application/json"},
                                json={"socket": "publish", "place_id": member.place_id})
        assert got.status == 200, await got.text()
        assert (await got.json())["url"] == (f"wss://media-1.example.cn:8443/api/v1/media/sessions/{live.session_id}"
                                             f"/places/{member.place_id}/publish")
        assert await raw_conn.fetchval("SELECT worker_id FROM media_assignment") == "media-1"
        # the page's own socket is refused here: the worker holds the session's media
        refused = await tiered.get(f"/supervise/sessions/{live.session_id}/media/watch",
                                   headers={"Origin": str(tiered.make_url("")).rstrip("/"),
                                            "Accept": "application/json"})
        assert refused.status == 503 and (await refused.json())["error"]["code"] == "media_on_worker"
    finally:
        await tiered.close()
