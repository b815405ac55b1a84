"""Who may not publish nor watch: a bidder, an expert of another session, a supervisor of another tender, an
anonymous client, a bad token; a member at someone else's place. Each WebSocket closes with a code to act on
(4401 not authenticated, 4403 forbidden) and the refusal's stable code as the reason; nothing is published."""
from aiohttp import WSMsgType

from evaluation.media.routes import MEDIA_HUB
from tests.helpers import bidder

from .peers import ws_url


async def refused(client, url: str, headers: dict | None = None, first: dict | None = None) -> tuple[int, str, str]:
    """Connect, optionally send a first message, and read until the server closes: (close code, reason, error)."""
    ws = await client.ws_connect(url, headers=headers or {})
    if first is not None:
        await ws.send_json(first)
    error = ""
    while True:
        msg = await ws.receive(timeout=15)
        if msg.type == WSMsgType.TEXT:
            data = msg.json()
            assert data["type"] == "error", data  # never a ready, an offer or an answer
            error = data["code"]
            continue
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), msg
        return ws.close_code, (msg.extra or ""), error


async def test_outsiders_can_neither_publish_nor_watch(client, live):
    app = client.server.app
    other = live.other  # another session of another tender
    bidder_actor = await bidder(client, org_name="中山市建工集团有限公司")
    place = live.members[0].place_id
    urls = {"publish": ws_url(live.session_id, f"places/{place}/publish"),
            "watch": ws_url(live.session_id, "watch"), "conference": ws_url(live.session_id, "conference")}

    outsiders = {"bidder": bidder_actor, "expert of another session": other.expert,
                 "supervisor of another tender": other.supervisor}
    for who, person in outsiders.items():
        for what, url in urls.items():
            code, reason, error = await refused(client, url, person.headers)
            assert (code, reason, error) == (4403, "media_forbidden", "media_forbidden"), (who, what)
            # the token sent as the first message (as a browser does) is refused the same way
            code, reason, _ = await refused(client, url, first={"type": "auth", "token": person.token})
            assert (code, reason) == (4403, "media_forbidden"), (who, what)

    for what, url in urls.items():
        # anonymous: anything but an auth message first
        code, reason, error = await refused(client, url, first={"type": "offer", "sdp": "v=0"})
        assert (code, reason, error) == (4401, "authentication_required", "authentication_required"), what
        code, reason, _ = await refused(client, url, first={"type": "auth", "token": "not-a-token"})
        assert (code, reason) == (4401, "token_malformed"), what

    # a member of this very session may not publish someone else's place, nor watch as a supervisor
    code, reason, _ = await refused(client, urls["publish"], live.members[1].person.headers)
    assert (code, reason) == (4403, "media_forbidden")
    code, reason, _ = await refused(client, urls["watch"], live.members[1].person.headers)
    assert (code, reason) == (4403, "media_forbidden")
    # a place that is not in the session
    code, reason, _ = await refused(client, ws_url(live.session_id, f"places/{other.place_id}/publish"),
                                    live.members[0].person.headers)
    assert (code, reason) == (4404, "place_not_found")

    hub = app[MEDIA_HUB]
    assert hub.stats(live.session_id) == [] and hub.publication(live.session_id, place) is None
    # the supervisors' health view refuses outsiders over HTTP too
    for person in outsiders.values():
        resp = await client.get(f"/api/v1/media/sessions/{live.session_id}/health", headers=person.headers)
        assert (resp.status, (await resp.json())["error"]["code"]) == (403, "media_forbidden")
