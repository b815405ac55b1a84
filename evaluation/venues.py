"""Venue use cases (统一场地管理): sites, rooms and places managed by admins; rooms booked for a time range.

Never commits: every function runs in the caller's transaction and writes its ledger entry there. Overlapping
bookings are refused by the database's exclusion constraint, not by a read-then-write check, so two requests
racing for one room and time cannot both succeed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.identity_models import User
from core.ids import public_id
from core.principal import Principal
from evaluation import access
from evaluation.models import EvaluationSession, Place, Room, RoomBooking, Site
from evaluation.rules import (TERMINAL_SESSION_STATES, check_active, check_booking_range,
                              check_cancellable)
from evidence import ledger_service as ledger
from expert_pool.regions import check_region_code
from trading.lifecycle import TERMINAL_STATES
from trading.models import Lot, Tender
from trading.loaders import get_tender

log = logging.getLogger(__name__)

OVERLAP_CONSTRAINT = "room_booking_no_overlap"
# unique indexes whose violation is the user's to fix, with the code and message they get
UNIQUE_REFUSALS = {
    "venue_site_active_name_idx": ("site_name_taken", "an active site already has this name"),
    "venue_room_site_id_active_name_idx": ("room_name_taken", "an active room of this site already has this name"),
    "venue_place_room_id_active_label_idx": ("place_label_taken",
                                             "an active place of this room already has this label"),
    "venue_place_room_id_camera_idx": ("camera_position_taken", "another place of this room is the camera position"),
}
BOOKING_LIST_LIMIT = 200


def refused_by(err: IntegrityError) -> str | None:
    """The name of the constraint or unique index the database refused a write with."""
    return getattr(getattr(err.orig, "__cause__", None), "constraint_name", None)


async def _flush_guarded(session: AsyncSession, *objects: Any, details: dict | None = None) -> None:
    """Write pending changes inside a savepoint; a unique index the user can satisfy becomes a 409."""
    try:
        async with session.begin_nested():
            session.add_all(objects)
            await session.flush()
    except IntegrityError as err:
        refusal = UNIQUE_REFUSALS.get(refused_by(err) or "")
        if refusal is None:
            raise
        raise Conflict(refusal[1], code=refusal[0], details=details or {}) from err


def _changes(row: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Apply `values` to `row`; returns {field: [before, after]} for what actually changed."""
    changed = {}
    for name, value in values.items():
        before = getattr(row, name)
        if before != value:
            setattr(row, name, value)
            changed[name] = [before, value]
    return changed


def _require_admin(who: Principal) -> None:
    if not access.may_manage_venues(who):
        raise Forbidden("only centre admins manage venues", code="venue_admin_only")


# ---------------------------------------------------------------------------------------------------------
# Reading.

@dataclass
class RoomTree:
    room: Room
    places: list[Place] = field(default_factory=list)


@dataclass
class SiteTree:
    site: Site
    rooms: list[RoomTree] = field(default_factory=list)


async def get_site(session: AsyncSession, site_public_id: str, *, lock: bool = False) -> Site:
    """The site with this public id (FOR UPDATE when `lock`), or 404 site_not_found."""
    q = select(Site).where(Site.public_id == site_public_id)
    if lock:
        q = q.with_for_update()
    site = (await session.execute(q)).scalar_one_or_none()
    if site is None:
        raise NotFound("no such site", code="site_not_found", details={"site_id": site_public_id})
    return site


async def get_room(session: AsyncSession, room_public_id: str, *, lock: str | None = None) -> tuple[Room, Site]:
    """The room and its site, or 404 room_not_found. `lock` "share" keeps the room from being retired meanwhile
    (bookings), "update" holds it exclusively (retiring, the camera position)."""
    q = select(Room, Site).join(Site, Site.id == Room.site_id).where(Room.public_id == room_public_id)
    if lock is not None:
        q = q.with_for_update(of=Room, read=lock == "share")
    row = (await session.execute(q)).one_or_none()
    if row is None:
        raise NotFound("no such room", code="room_not_found", details={"room_id": room_public_id})
    return row[0], row[1]


async def get_place(session: AsyncSession, place_public_id: str) -> tuple[Place, Room, Site]:
    """The place with its room and site, or 404 place_not_found."""
    row = (await session.execute(
        select(Place, Room, Site).join(Room, Room.id == Place.room_id).join(Site, Site.id == Room.site_id)
        .where(Place.public_id == place_public_id))).one_or_none()
    if row is None:
        raise NotFound("no such place", code="place_not_found", details={"place_id": place_public_id})
    return row[0], row[1], row[2]


async def site_trees(session: AsyncSession, sites: Sequence[Site], *, include_retired: bool = False) -> list[SiteTree]:
    """The sites with their rooms and each room's places (active ones unless `include_retired`)."""
    trees = {s.id: SiteTree(s) for s in sites}
    if not trees:
        return []
    q = select(Room).where(Room.site_id.in_(trees)).order_by(Room.name, Room.id)
    if not include_retired:
        q = q.where(Room.status == "active")
    rooms = {r.id: RoomTree(r) for r in (await session.execute(q)).scalars()}
    if rooms:
        q = select(Place).where(Place.room_id.in_(rooms)).order_by(Place.label, Place.id)
        if not include_retired:
            q = q.where(Place.status == "active")
        for place in (await session.execute(q)).scalars():
            rooms[place.room_id].places.append(place)
    for tree in rooms.values():
        trees[tree.room.site_id].rooms.append(tree)
    return list(trees.values())


async def list_sites(session: AsyncSession, *, region_code: str | None = None,
                     include_retired: bool = False) -> list[SiteTree]:
    """Sites by name, optionally of one region, with their rooms and places."""
    q = select(Site).order_by(Site.name, Site.id)
    if region_code is not None:
        q = q.where(Site.region_code == check_region_code(region_code, "region_code"))
    if not include_retired:
        q = q.where(Site.status == "active")
    return await site_trees(session, list((await session.execute(q)).scalars()), include_retired=include_retired)


async def room_tree(session: AsyncSession, room: Room) -> RoomTree:
    """A room with its active places."""
    places = (await session.execute(select(Place).where(Place.room_id == room.id, Place.status == "active")
                                    .order_by(Place.label, Place.id))).scalars()
    return RoomTree(room, list(places))


# ---------------------------------------------------------------------------------------------------------
# Sites.

async def create_site(session: AsyncSession, *, who: Principal, name: str, region_code: str,
                      address: str = "") -> Site:
    """A new trading centre in a GB/T 2260 region (a province or a city)."""
    _require_admin(who)
    region_code = check_region_code(region_code, "region_code")
    site = Site(public_id=public_id("ST"), name=name.strip(), region_code=region_code, address=address.strip())
    await _flush_guarded(session, site, details={"name": site.name})
    await ledger.append(session, actor=who.public_id, action="venue.site.create",
                        entity=ledger.entity_ref("site", site.public_id),
                        payload={"name": site.name, "region_code": site.region_code, "address": site.address})
    return site


async def update_site(session: AsyncSession, *, who: Principal, site_public_id: str,
                      values: dict[str, Any]) -> Site:
    """Change an active site's name, region or address; a change writes one ledger entry."""
    _require_admin(who)
    site = await get_site(session, site_public_id, lock=True)
    check_active("site", site.public_id, site.status)
    if "region_code" in values:
        check_region_code(values["region_code"], "region_code")
    now = await db_now(session)  # before the changes: a query would flush them outside the savepoint
    changed = _changes(site, {k: v.strip() if isinstance(v, str) else v for k, v in values.items()})
    if changed:
        site.updated_at = now
        await _flush_guarded(session, site, details={"name": site.name})
        await ledger.append(session, actor=who.public_id, action="venue.site.update",
                            entity=ledger.entity_ref("site", site.public_id), payload={"changes": changed})
    return site


async def _live_bookings(session: AsyncSession, room_ids: Sequence[int], now: datetime) -> list[RoomBooking]:
    if not room_ids:
        return []
    return list((await session.execute(
        select(RoomBooking).where(RoomBooking.room_id.in_(room_ids), RoomBooking.status == "confirmed",
                                  RoomBooking.ends_at > now).order_by(RoomBooking.starts_at))).scalars())


def _refuse_if_booked(kind: str, public_id_: str, bookings: list[RoomBooking]) -> None:
    if bookings:
        raise Conflict(f"the {kind} has bookings still to come; cancel them first", code=f"{kind}_has_bookings",
                       details={f"{kind}_id": public_id_, "bookings": [
                           {"booking_id": b.public_id, "starts_at": b.starts_at.isoformat(),
                            "ends_at": b.ends_at.isoformat()} for b in bookings[:20]]})


async def retire_site(session: AsyncSession, *, who: Principal, site_public_id: str) -> Site:
    """Retire a site with its rooms and places; refused while any of its rooms has a booking to come."""
    _require_admin(who)
    site = await get_site(session, site_public_id, lock=True)
    check_active("site", site.public_id, site.status)
    rooms = list((await session.execute(select(Room).where(Room.site_id == site.id, Room.status == "active")
                                        .with_for_update())).scalars())
    now = await db_now(session)
    _refuse_if_booked("site", site.public_id, await _live_bookings(session, [r.id for r in rooms], now))
    places = 0
    for room in rooms:
        places += await _retire_room_rows(session, room, now)
    site.status, site.retired_at, site.updated_at = "retired", now, now
    await ledger.append(session, actor=who.public_id, action="venue.site.retire",
                        entity=ledger.entity_ref("site", site.public_id),
                        payload={"rooms": [r.public_id for r in rooms], "places": places})
    return site


# ---------------------------------------------------------------------------------------------------------
# Rooms.

async def create_room(session: AsyncSession, *, who: Principal, site_public_id: str, name: str,
                      capacity: int | None = None) -> Room:
    """A new room in an active site."""
    _require_admin(who)
    site = (await session.execute(select(Site).where(Site.public_id == site_public_id)
                                  .with_for_update(read=True))).scalar_one_or_none()
    if site is None:
        raise NotFound("no such site", code="site_not_found", details={"site_id": site_public_id})
    check_active("site", site.public_id, site.status)
    room = Room(public_id=public_id("RM"), site_id=site.id, name=name.strip(), capacity=capacity)
    await _flush_guarded(session, room, details={"site_id": site.public_id, "name": room.name})
    await ledger.append(session, actor=who.public_id, action="venue.room.create",
                        entity=ledger.entity_ref("room", room.public_id),
                        payload={"site": site.public_id, "name": room.name, "capacity": capacity})
    return room


async def update_room(session: AsyncSession, *, who: Principal, room_public_id: str, values: dict[str, Any]) -> Room:
    """Rename an active room or change its capacity."""
    _require_admin(who)
    room, site = await get_room(session, room_public_id, lock="update")
    check_active("room", room.public_id, room.status)
    now = await db_now(session)  # before the changes: a query would flush them outside the savepoint
    changed = _changes(room, {k: v.strip() if isinstance(v, str) else v for k, v in values.items()})
    if changed:
        room.updated_at = now
        await _flush_guarded(session, room, details={"site_id": site.public_id, "name": room.name})
        await ledger.append(session, actor=who.public_id, action="venue.room.update",
                            entity=ledger.entity_ref("room", room.public_id), payload={"changes": changed})
    return room


async def _retire_room_rows(session: AsyncSession, room: Room, now: datetime) -> int:
    places = list((await session.execute(select(Place).where(Place.room_id == room.id, Place.status == "active")))
                  .scalars())
    for place in places:
        place.status, place.retired_at, place.updated_at = "retired", now, now
    room.status, room.retired_at, room.updated_at = "retired", now, now
    return len(places)


async def retire_room(session: AsyncSession, *, who: Principal, room_public_id: str) -> Room:
    """Retire a room and its places; refused while the room has a booking to come."""
    _require_admin(who)
    room, _ = await get_room(session, room_public_id, lock="update")
    check_active("room", room.public_id, room.status)
    now = await db_now(session)
    _refuse_if_booked("room", room.public_id, await _live_bookings(session, [room.id], now))
    places = await _retire_room_rows(session, room, now)
    await ledger.append(session, actor=who.public_id, action="venue.room.retire",
                        entity=ledger.entity_ref("room", room.public_id), payload={"places": places})
    return room


# ---------------------------------------------------------------------------------------------------------
# Places (席位).

async def create_place(session: AsyncSession, *, who: Principal, room_public_id: str, label: str,
                       camera_position: bool = False) -> Place:
    """A new place in an active room, optionally the room's camera position."""
    _require_admin(who)
    room, site = await get_room(session, room_public_id, lock="update" if camera_position else "share")
    check_active("room", room.public_id, room.status)
    place = Place(public_id=public_id("PL"), room_id=room.id, label=label.strip(), camera_position=camera_position)
    await _flush_guarded(session, place, details={"room_id": room.public_id, "label": place.label})
    await ledger.append(session, actor=who.public_id, action="venue.place.create",
                        entity=ledger.entity_ref("place", place.public_id),
                        payload={"room": room.public_id, "label": place.label, "camera_position": camera_position})
    return place


async def update_place(session: AsyncSession, *, who: Principal, place_public_id: str,
                       values: dict[str, Any]) -> Place:
    """Relabel an active place, or mark or unmark it as the room's camera position."""
    _require_admin(who)
    place, room, _ = await get_place(session, place_public_id)
    await get_room(session, room.public_id, lock="update")
    check_active("place", place.public_id, place.status)
    now = await db_now(session)  # before the changes: a query would flush them outside the savepoint
    changed = _changes(place, {k: v.strip() if isinstance(v, str) else v for k, v in values.items()})
    if changed:
        place.updated_at = now
        await _flush_guarded(session, place, details={"room_id": room.public_id, "label": place.label})
        await ledger.append(session, actor=who.public_id, action="venue.place.update",
                            entity=ledger.entity_ref("place", place.public_id), payload={"changes": changed})
    return place


async def retire_place(session: AsyncSession, *, who: Principal, place_public_id: str) -> Place:
    """Retire a place; the room keeps its other places."""
    _require_admin(who)
    place, room, _ = await get_place(session, place_public_id)
    check_active("place", place.public_id, place.status)
    now = await db_now(session)
    place.status, place.retired_at, place.updated_at = "retired", now, now
    await ledger.append(session, actor=who.public_id, action="venue.place.retire",
                        entity=ledger.entity_ref("place", place.public_id), payload={"room": room.public_id})
    return place


# ---------------------------------------------------------------------------------------------------------
# Bookings.

@dataclass
class BookingView:
    """A booking with the public ids it refers to."""

    booking: RoomBooking
    room: Room
    site: Site
    tender: Tender | None
    lot: Lot | None
    booked_by: str | None
    session_id: str | None = None  # the evaluation session it is a venue of


async def _overlapping(session: AsyncSession, room: Room, starts_at: datetime, ends_at: datetime) -> list[RoomBooking]:
    """Confirmed bookings of `room` overlapping [starts_at, ends_at), as the database sees them now."""
    wanted = func.tstzrange(starts_at, ends_at, literal("[)"))
    return list((await session.execute(
        select(RoomBooking).where(RoomBooking.room_id == room.id, RoomBooking.status == "confirmed",
                                  RoomBooking.during.op("&&")(wanted)).order_by(RoomBooking.starts_at)
    )).scalars())


def _times(booking: RoomBooking) -> dict[str, str]:
    return {"booking_id": booking.public_id, "starts_at": booking.starts_at.isoformat(),
            "ends_at": booking.ends_at.isoformat()}


async def _purpose(session: AsyncSession, tender_code: str | None,
                   lot_public_id: str | None) -> tuple[Tender | None, Lot | None]:
    if tender_code is None:
        if lot_public_id is not None:
            raise Unprocessable("name the tender of the lot", code="lot_without_tender")
        return None, None
    tender = await get_tender(session, tender_code)
    if lot_public_id is None:
        return tender, None
    lot = (await session.execute(select(Lot).where(Lot.public_id == lot_public_id))).scalar_one_or_none()
    if lot is None or lot.tender_id != tender.id:
        raise NotFound(f"tender {tender.code} has no lot {lot_public_id}", code="lot_not_found",
                       details={"tender": tender.code, "lot_id": lot_public_id})
    return tender, lot


async def book_room(session: AsyncSession, *, who: Principal, room_public_id: str, starts_at: datetime,
                    ends_at: datetime, label: str, tender_code: str | None = None,
                    lot_public_id: str | None = None) -> BookingView:
    """Hold a room for [starts_at, ends_at): an agent for a tender they manage, an admin for any purpose.

    Refused with 409 room_booked, naming the bookings in the way, when the database's exclusion constraint
    finds an overlapping confirmed booking of the room — including one committed a moment ago by a racing
    request."""
    # FOR SHARE: the room cannot be retired under us, yet two bookings still race each other to the constraint
    room, site = await get_room(session, room_public_id, lock="share")
    tender, lot = await _purpose(session, tender_code, lot_public_id)
    if not access.may_book(tender, who):
        raise Forbidden("you may book rooms only for tenders you manage", code="booking_forbidden",
                        details={"tender": tender.code if tender else None})
    check_active("site", site.public_id, site.status)
    check_active("room", room.public_id, room.status)
    if tender is not None and tender.status in TERMINAL_STATES:
        raise Conflict(f"tender {tender.code} is {tender.status}; nothing is left to evaluate",
                       code="tender_finished", details={"tender": tender.code, "status": tender.status})
    now = await db_now(session)
    check_booking_range(starts_at, ends_at, now)
    booking = RoomBooking(public_id=public_id("BK", 8), room_id=room.id, starts_at=starts_at, ends_at=ends_at,
                          tender_id=tender.id if tender else None, lot_id=lot.id if lot else None,
                          label=label.strip(), booked_by_id=who.user_id)
    try:
        async with session.begin_nested():
            session.add(booking)
            await session.flush()
    except IntegrityError as err:
        if refused_by(err) != OVERLAP_CONSTRAINT:
            raise
        # the racing booking has committed (the constraint waited for it), so this statement sees it
        in_the_way = await _overlapping(session, room, starts_at, ends_at)
        raise Conflict("the room is already booked for part of that time", code="room_booked",
                       details={"room_id": room.public_id, "starts_at": starts_at.isoformat(),
                                "ends_at": ends_at.isoformat(), "conflicts": [_times(b) for b in in_the_way]},
                       ) from err
    await ledger.append(session, actor=who.public_id, action="venue.room.book",
                        entity=ledger.entity_ref("booking", booking.public_id),
                        payload={"room": room.public_id, "starts_at": starts_at.isoformat(),
                                 "ends_at": ends_at.isoformat(), "tender": tender.code if tender else None,
                                 "lot": lot.public_id if lot else None, "label": booking.label})
    log.info("room %s booked %s..%s as %s", room.public_id, starts_at, ends_at, booking.public_id)
    return BookingView(booking, room, site, tender, lot, who.public_id)


async def _views(session: AsyncSession, rows: Sequence[RoomBooking], room: Room | None = None,
                 site: Site | None = None) -> list[BookingView]:
    tender_ids = {b.tender_id for b in rows if b.tender_id is not None}
    lot_ids = {b.lot_id for b in rows if b.lot_id is not None}
    user_ids = {b.booked_by_id for b in rows}
    tenders = {t.id: t for t in (await session.execute(select(Tender).where(Tender.id.in_(tender_ids)))).scalars()} \
        if tender_ids else {}
    lots = {x.id: x for x in (await session.execute(select(Lot).where(Lot.id.in_(lot_ids)))).scalars()} \
        if lot_ids else {}
    users = dict((await session.execute(select(User.id, User.public_id).where(User.id.in_(user_ids)))).all()) \
        if user_ids else {}
    session_ids = {b.evaluation_session_id for b in rows if b.evaluation_session_id is not None}
    sessions = dict((await session.execute(select(EvaluationSession.id, EvaluationSession.public_id)
                                           .where(EvaluationSession.id.in_(session_ids)))).all()) \
        if session_ids else {}
    out = []
    for b in rows:
        if room is None or room.id != b.room_id:
            room, site = (await session.execute(select(Room, Site).join(Site, Site.id == Room.site_id)
                                                .where(Room.id == b.room_id))).one()
        out.append(BookingView(b, room, site, tenders.get(b.tender_id), lots.get(b.lot_id),
                               users.get(b.booked_by_id), sessions.get(b.evaluation_session_id)))
    return out


async def get_booking(session: AsyncSession, booking_public_id: str, *, lock: bool = False) -> BookingView:
    """The booking with this public id, or 404 booking_not_found."""
    q = select(RoomBooking).where(RoomBooking.public_id == booking_public_id)
    if lock:
        q = q.with_for_update()
    booking = (await session.execute(q)).scalar_one_or_none()
    if booking is None:
        raise NotFound("no such booking", code="booking_not_found", details={"booking_id": booking_public_id})
    return (await _views(session, [booking]))[0]


async def room_bookings(session: AsyncSession, room_public_id: str, *, start: datetime | None = None,
                        end: datetime | None = None, include_cancelled: bool = False) -> list[BookingView]:
    """A room's bookings overlapping [start, end) in time order; by default those not yet over."""
    room, site = await get_room(session, room_public_id)
    if start is None:
        start = await db_now(session)
    if end is not None and end <= start:
        raise Unprocessable("the window must end after it starts", code="invalid_time_range")
    q = select(RoomBooking).where(RoomBooking.room_id == room.id, RoomBooking.ends_at > start)
    if end is not None:
        q = q.where(RoomBooking.starts_at < end)
    if not include_cancelled:
        q = q.where(RoomBooking.status == "confirmed")
    rows = list((await session.execute(q.order_by(RoomBooking.starts_at, RoomBooking.id)
                                       .limit(BOOKING_LIST_LIMIT))).scalars())
    return await _views(session, rows, room, site)


async def cancel_booking(session: AsyncSession, *, who: Principal, booking_public_id: str,
                         reason: str) -> BookingView:
    """Cancel a confirmed booking that is not over: the row stays, marked cancelled, and the time is free."""
    view = await get_booking(session, booking_public_id, lock=True)
    booking = view.booking
    if not access.may_cancel(view.tender, who):
        raise Forbidden("you may cancel only bookings for tenders you manage", code="booking_forbidden",
                        details={"booking_id": booking.public_id})
    now = await db_now(session)
    check_cancellable(booking.status, booking.ends_at, now)
    if booking.evaluation_session_id is not None:
        es = await session.get(EvaluationSession, booking.evaluation_session_id)
        if es.status not in TERMINAL_SESSION_STATES:
            raise Conflict("the booking is a venue of a live evaluation session", code="booking_in_session",
                           details={"booking_id": booking.public_id, "session_id": es.public_id})
    booking.status, booking.cancelled_at = "cancelled", now
    booking.cancelled_by_id, booking.cancel_reason = who.user_id, reason.strip()
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="venue.booking.cancel",
                        entity=ledger.entity_ref("booking", booking.public_id),
                        payload={"room": view.room.public_id, "reason": booking.cancel_reason})
    return view

