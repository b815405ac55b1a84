"""The media plane on the pages: the signaling WebSockets for a cookie-signed-in browser, and the supervisor's
replay page.

WebSockets. A browser cannot put a bearer token on a WebSocket upgrade, and the JSON API never reads the page
cookies. So the pages have their own WebSocket paths (page paths: the page session middleware resolves the
cookie to the same `Principal` as a bearer token), which run the media plane's own signaling handlers
(`evaluation.media.routes`): who may publish, confer or watch is decided there, by `evaluation.media.grants`,
exactly as for API clients, with the same close codes (4401, 4403, 4404, 4409).

A WebSocket upgrade is a GET: no CSRF token protects it, and browsers send the SameSite cookie with any
same-site upgrade whatever page asked for it. So the upgrade must come from a page of this site: its `Origin`
must be the site's origin (the public URL's, or the one the request itself was made to). Any other origin, or
none, is refused with 403 `origin_refused` before the upgrade (cross-site WebSocket hijacking).

- `/sessions/{id}/media/places/{place}/publish`: the member's camera and microphone (send only);
- `/sessions/{id}/media/conference`: the other members' places (视频会议), and the chair's mute;
- `/supervise/sessions/{id}/media/watch`: every place, its health and the lost/restored alerts.

With media workers on (BIDROOM_MEDIA_WORKERS), a session's media lives at the worker that owns it, another origin
that the page cookie does not reach. The page then asks `POST /sessions/{id}/media/ticket` (its cookie session
and CSRF token) for the socket's URL at that worker and a media ticket: a signed token of 60 s for the media
plane's sockets only (another audience than the API's, web.keys.MEDIA_TICKETS), sent as the socket's first
message as API clients send their token. The worker decides who may publish, confer or watch, as for any client.

Replay: `/supervise/sessions/{id}/replay` shows the session timeline's markers (the API's timeline handler,
with signed playback tickets in the segment URLs); a marker opens its segment at the marker's offset."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from core.errors import DomainError, Forbidden, Unauthorized, Unprocessable
from evaluation.media import playback_routes
from evaluation.media import routes as media
from evaluation.media import worker, worker_routes
from web.keys import MEDIA_TICKETS, SETTINGS, principal
from web.pages.i18n import N_, gettext
from web.pages.routing import Pages
from web.pages.routing import _refusal as page_refusal

pages = Pages()

# what a timeline event is called on the replay page; others show their ledger action
ACTIONS = {
    "evaluation.session.check_in": N_("Check-in opened"),
    "evaluation.session.in_progress": N_("Evaluation started"),
    "evaluation.session.suspended": N_("Session suspended"),
    "evaluation.session.scoring_closed": N_("Scoring closed"),
    "evaluation.member.check_in": N_("Member checked in"),
    "evaluation.chair.vote": N_("Chair vote cast"),
    "evaluation.chair.elected": N_("Chair elected"),
    "evaluation.review.closed": N_("Review closed"),
    "evaluation.sheet.save": N_("Score sheet saved"),
    "evaluation.sheet.submit": N_("Scores submitted"),
    "evaluation.flag.justify": N_("Flag justified"),
    "evaluation.scoring.closed": N_("Scoring closed"),
    "evaluation.media.mute": N_("Member muted by the chair"),
    "evaluation.media.unmute": N_("Member unmuted by the chair"),
    "evaluation.media.place_video_lost": N_("Place video lost"),
    "evaluation.media.place_video_restored": N_("Place video restored"),
    "evaluation.media.segment_opened": N_("Recording segment started"),
    "evaluation.media.segment_closed": N_("Recording segment closed"),
}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def not_here(request: web.Request) -> web.Response | None:
    """With media workers on (BIDROOM_MEDIA_WORKERS), a session's media is served by the worker that owns it, at
    another origin the page cookie does not reach: the pages' own sockets are refused there (503
    media_on_worker) rather than served by a hub that holds none of the session's media; the pages connect to
    the worker with a media ticket instead (`ticket`)."""
    if not request.app[SETTINGS].media_workers:
        return None
    owner = await worker_routes._owner(request.app, request.match_info["session_id"])
    me = request.app.get(worker_routes.WORKER_IDENTITY)
    if me is not None and owner.worker_id == me.worker_id:
        return None
    err = DomainError("the session's media is served by a media worker: ask for a media ticket",
                      code="media_on_worker", details={"worker_id": owner.worker_id})
    err.status = 503
    return page_refusal(request, err)


def refusal(request: web.Request) -> web.Response | None:
    """The answer to an upgrade that does not come from a page of this site (403 origin_refused) or has no
    signed-in page session (401 authentication_required, not the sign-in redirect a page gets: the signaling would
    otherwise wait for a bearer token the page does not have); None when the upgrade may go on."""
    given = request.headers.get("Origin", "").strip().lower()
    allowed = {origin_of(request.app[SETTINGS].public_url), f"{request.scheme}://{request.host}".lower()}
    if not given or given not in allowed:
        return page_refusal(request, Forbidden("this connection must come from a page of this site",
                                               code="origin_refused", details={"origin": given or None}))
    if principal(request) is None:
        return page_refusal(request, Unauthorized("sign in first", code="authentication_required"))
    return None


@pages.table.get("/sessions/{session_id}/media/places/{place_id}/publish")
async def publish_socket(request: web.Request) -> web.StreamResponse:
    return refusal(request) or await not_here(request) or await media.publish_socket(request)


@pages.table.get("/sessions/{session_id}/media/conference")
async def conference_socket(request: web.Request) -> web.StreamResponse:
    return refusal(request) or await not_here(request) or await media.conference_socket(request)


@pages.table.get("/supervise/sessions/{session_id}/media/watch")
async def watch_socket(request: web.Request) -> web.StreamResponse:
    return refusal(request) or await not_here(request) or await media.watch_socket(request)


SOCKETS = {"publish": "/places/{place_id}/publish", "conference": "/conference", "watch": "/watch"}


@pages.table.post("/sessions/{session_id}/media/ticket")
async def ticket(request: web.Request) -> web.Response:
    """JSON {"socket": "publish"|"conference"|"watch", "place_id": ...} -> {"url", "token", "expires_in"}: where
    the socket is (the session's media worker, or this server) and a media ticket to send as its first message.
    Signed-in pages only (the cookie session, and the CSRF token in X-CSRF-Token)."""
    who = principal(request)
    if who is None:
        return page_refusal(request, Unauthorized("sign in first", code="authentication_required"))
    try:
        body = await request.json()
    except ValueError:
        body = None
    socket = body.get("socket") if isinstance(body, dict) else None
    place = body.get("place_id") if isinstance(body, dict) else None
    if socket not in SOCKETS or (socket == "publish" and not (isinstance(place, str) and 0 < len(place) <= 32)):
        return page_refusal(request, Unprocessable(
            'send {"socket": "publish", "place_id": ...}, {"socket": "conference"} or {"socket": "watch"}',
            code="media_ticket_invalid", details={"sockets": sorted(SOCKETS)}))
    try:
        owner = await worker_routes._owner(request.app, request.match_info["session_id"])
    except DomainError as err:
        return page_refusal(request, err)
    tail = SOCKETS[socket].format(place_id=quote(place or "", safe=""))
    token = request.app[MEDIA_TICKETS].issue(sub=who.public_id, roles=sorted(who.roles),
                                             org=None)
    return web.json_response({"url": worker_routes._ws(owner.base_url) + worker.MEDIA_PATH_PREFIX
                              + owner.session_public_id + tail, "token": token,
                              "expires_in": request.app[MEDIA_TICKETS].ttl_s},
                             headers={"Cache-Control": "no-store"})


def action_label(action: str) -> str:
    found = ACTIONS.get(action)
    return gettext(found) if found else action


@pages.get("/supervise/sessions/{session_id}/replay", "replay.html", roles=("supervisor", "admin"))
async def replay(request: web.Request, who) -> dict[str, Any]:
    """The places with their segments and the timeline's markers; `?segment=&t=` opens a segment at an offset
    (what a marker links to, so the page works before its script runs)."""
    line = await playback_routes.session_timeline(request, who=who)
    segments = {s.segment_id: (p, s) for p in line.places for s in p.segments}
    chosen = request.query.get("segment")
    try:
        offset = max(0.0, float(request.query.get("t", "0")))
    except ValueError:
        offset = 0.0
    current = segments.get(chosen) if chosen else None
    if current is not None and current[1].url is None:
        current = None  # still being recorded, or removed at the end of its retention
    labels = {p.place_id: p.label for p in line.places}
    events = [e for e in line.events if e.marks]
    return {"line": line, "events": events, "current": current, "offset": offset, "labels": labels,
            "action_label": action_label, "urls": {k: s.url for k, (_p, s) in segments.items() if s.url}}
