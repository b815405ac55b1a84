"""Admin pages: accounts with their enrolment links (the one-time link with which a staff member sets a password
and TOTP), ending a user's sessions, and the venues: sites (交易中心), rooms (评标室) and places (席位).

Each action is the JSON API's own handler (identity.routes, identity.enrolment_routes, evaluation.routes), so
the same checks and ledger entries apply. An enrolment link is shown once, on the page that created it, as the
API shows it once; the platform keeps only its hash."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from core.errors import DomainError
from core.identity_schemas import ListQuery
from evaluation import routes as ev
from evaluation.schemas import PlaceIn, RoomIn, SiteIn, SiteQuery
from identity import enrolment_routes
from identity import routes as identity_routes
from identity.schemas import StaffEnrolmentIn
from web.api import RequestValidationFailed
from web.keys import db
from web.pages.routing import FormError, Pages, act, as_refusal, see_other, validated

pages = Pages()
ADMIN = ("admin",)
STAFF_ROLES = ("agent", "supervisor", "purchaser", "admin")




# ---- accounts -------------------------------------------------------------------------------------------------

async def users_context(request: web.Request, who) -> dict[str, Any]:
    query = ListQuery(cursor=request.query.get("cursor") or None, limit=50)
    page = await identity_routes.list_users(request, who=who, query=query)
    nxt = page.next.split("cursor=")[1].split("&")[0] if page.next else None
    return {"users": page.items, "next_cursor": nxt, "staff_roles": STAFF_ROLES, "form": {}}


@pages.get("/admin/users", "admin_users.html", roles=ADMIN)
async def users(request: web.Request, who):
    return await users_context(request, who)


@pages.post("/admin/enrolments", "admin_users.html", roles=ADMIN)
async def invite_staff(request: web.Request, who):
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("username", "display_name", "organisation_id", "email")}
    data = {"username": values["username"], "display_name": values["display_name"],
            "roles": [str(r) for r in form.getall("roles", [])],
            "organisation_id": values["organisation_id"] or None, "email": values["email"] or None}
    try:
        link = await enrolment_routes.invite_staff(request, who=who, body=validated(StaffEnrolmentIn, data))
    except (DomainError, RequestValidationFailed) as err:
        await db(request).rollback()
        raise FormError(as_refusal(err), "admin_users.html",
                        {**await users_context(request, who), "form": values}) from err
    return {**await users_context(request, who), "link": _link(link)}


def _link(response: web.Response) -> dict[str, Any]:
    """The link as the API answered it (shown once)."""
    return json.loads(response.body)


@pages.post("/admin/users/{user_id}/enrolment", "admin_users.html", roles=ADMIN)
async def reinvite(request: web.Request, who):
    try:
        link = await enrolment_routes.reinvite_user(request, who=who)
    except DomainError as err:
        await db(request).rollback()
        raise FormError(err, "admin_users.html", await users_context(request, who)) from err
    return {**await users_context(request, who), "link": _link(link)}


@pages.post("/admin/users/{user_id}/revoke-sessions", roles=ADMIN)
async def revoke_sessions(request: web.Request, who):
    await identity_routes.revoke_sessions(request, who=who)
    return see_other("/admin/users")


# ---- venues ---------------------------------------------------------------------------------------------------

async def venues_context(request: web.Request, who) -> dict[str, Any]:
    return {"sites": await ev.list_sites(request, who=who, query=SiteQuery())}


@pages.get("/admin/venues", "admin_venues.html", roles=ADMIN)
async def venues(request: web.Request, who):
    return await venues_context(request, who)


async def _venue_act(request: web.Request, who, call) -> web.Response:
    return await act(request, call, template="admin_venues.html", context=lambda: venues_context(request, who),
                     then="/admin/venues")


@pages.post("/admin/venues/sites", roles=ADMIN)
async def add_site(request: web.Request, who):
    form = await request.post()
    body = {k: str(form.get(k, "")).strip() for k in ("name", "region_code", "address")}
    return await _venue_act(request, who, lambda: ev.create_site(request, who=who, body=validated(SiteIn, body)))


@pages.post("/admin/venues/sites/{site_id}/rooms", roles=ADMIN)
async def add_room(request: web.Request, who):
    form = await request.post()
    body = {"name": str(form.get("name", "")).strip(), "capacity": str(form.get("capacity", "")).strip() or None}
    return await _venue_act(request, who, lambda: ev.create_room(request, who=who, body=validated(RoomIn, body)))


@pages.post("/admin/venues/rooms/{room_id}/places", roles=ADMIN)
async def add_place(request: web.Request, who):
    form = await request.post()
    body = {"label": str(form.get("label", "")).strip(), "camera_position": form.get("camera_position") == "yes"}
    return await _venue_act(request, who, lambda: ev.create_place(request, who=who, body=validated(PlaceIn, body)))


@pages.post("/admin/venues/places/{place_id}/retire", roles=ADMIN)
async def retire_place(request: web.Request, who):
    return await _venue_act(request, who, lambda: ev.retire_place(request, who=who))
