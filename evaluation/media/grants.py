"""Who may publish to, watch or join the media of an evaluation session; answers as grants the hub acts on.

- A place's camera and microphone are published only by the committee member checked in at that place of that
  session (experts and tenderer representatives alike).
- A room camera (全景: the place of a room marked camera_position) is published by a device account of the room's
  site (evaluation.media.devices), while the room is booked for the session and the session is live. A device
  publishes nothing else, watches nothing and joins no conference.
- Supervisors of the tender (行政监督部门, trading.access.is_supervisor_of) watch and listen to every place; they
  only receive.
- Checked-in members confer (视频会议): each receives the other members' places. The chair (组长) may mute a
  member's audio for everyone live; recordings keep every place's own microphone.
- Nobody else (bidders among them) receives anything: 招标投标法 第44条 and 实施条例 第49条 keep the evaluation
  confidential to the committee, under the supervision of the administrative supervisors.

Reads only, except `set_muted`, which writes its ledger entry in the caller's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden, NotFound
from core.principal import Principal
from evaluation import members
from evaluation.media import devices
from evaluation.models import EvaluationMember, EvaluationSession
from evaluation.rules import TERMINAL_SESSION_STATES
from evidence import ledger_service as ledger
from trading.access import is_supervisor_of

CONFIDENTIAL = "招标投标法 第44条; 招标投标法实施条例 第49条"


@dataclass(frozen=True)
class PlaceRef:
    id: int
    public_id: str
    label: str
    camera: bool
    member_public_id: str | None = None
    member_kind: str | None = None
    site_id: int | None = None


@dataclass(frozen=True)
class PublishGrant:
    session_id: int
    session_public_id: str
    place: PlaceRef
    user_id: int
    user_public_id: str
    role: str  # member | camera
    device_public_id: str | None = None


@dataclass(frozen=True)
class ViewGrant:
    session_id: int
    session_public_id: str
    role: str  # supervisor | member
    places: tuple[PlaceRef, ...]
    user_public_id: str
    member_public_id: str | None = None
    is_chair: bool = False


@dataclass
class _Loaded:
    es: EvaluationSession
    tender: object
    members: list[EvaluationMember]
    places: dict[int, PlaceRef]  # place id -> place, member places and camera places of the session's rooms


async def _load(session: AsyncSession, session_public_id: str) -> _Loaded:
    es, tender, _lot = await members.load_session(session, session_public_id)
    current = await members.members_of(session, es)
    by_place = {m.place_id: m for m in current if m.place_id is not None}
    places: dict[int, PlaceRef] = {}
    for at in await members.session_places(session, es):
        m = by_place.get(at.place.id)
        if m is not None or at.place.camera_position:
            places[at.place.id] = PlaceRef(at.place.id, at.place.public_id, at.place.label, at.place.camera_position,
                                           m.public_id if m else None, m.kind if m else None, at.site.id)
    return _Loaded(es, tender, current, places)


def _live(es: EvaluationSession) -> None:
    if es.status in TERMINAL_SESSION_STATES:
        raise Conflict(f"the session is {es.status}: its media plane is closed", code="session_not_live",
                       details={"status": es.status})


def _no_media(es: EvaluationSession) -> Forbidden:
    return Forbidden("only the committee and the tender's supervisors take part in the session's media",
                     code="media_forbidden", details={"session_id": es.public_id, "statute": CONFIDENTIAL})


def _device_forbidden(es: EvaluationSession, place_public_id: str, why: str) -> Forbidden:
    return Forbidden(f"a venue device publishes only the room camera (全景) of its own site's rooms: {why}",
                     code="device_forbidden", details={"session_id": es.public_id, "place_id": place_public_id})


async def _device_grant(session: AsyncSession, loaded: _Loaded, who: Principal, place: PlaceRef | None,
                        place_public_id: str) -> PublishGrant:
    """A device account: the room camera of a room of its own site, booked for this live session."""
    es = loaded.es
    mine = await devices.site_of(session, who)
    if mine is None:
        raise _device_forbidden(es, place_public_id, "this account is not a registered device")
    device_public_id, site_id = mine
    if place is None:
        raise _device_forbidden(es, place_public_id, "the place is not in a room booked for this session")
    if not place.camera or place.member_public_id is not None:
        raise _device_forbidden(es, place_public_id, "this is a member's place, not a room camera")
    if place.site_id != site_id:
        raise _device_forbidden(es, place_public_id, "the room belongs to another site")
    _live(es)
    return PublishGrant(es.id, es.public_id, place, who.user_id, who.public_id, "camera", device_public_id)


async def publish_grant(session: AsyncSession, *, who: Principal, session_public_id: str,
                        place_public_id: str) -> PublishGrant:
    loaded = await _load(session, session_public_id)
    es = loaded.es
    place = next((p for p in loaded.places.values() if p.public_id == place_public_id), None)
    if who.has(devices.DEVICE_ROLE):
        return await _device_grant(session, loaded, who, place, place_public_id)
    if place is None:
        mine = next((m for m in loaded.members if m.user_id == who.user_id), None)
        if mine is None and not who.has("admin"):
            raise _no_media(es)
        raise NotFound("no such place in this session", code="place_not_found", details={"place_id": place_public_id})
    _live(es)
    if place.camera and place.member_public_id is None:
        raise Forbidden("a room camera is published by a device account of its site", code="media_forbidden",
                        details={"place_id": place.public_id})
    member = next((m for m in loaded.members if m.place_id == place.id), None)
    if member is None or member.user_id != who.user_id:
        raise Forbidden("only the member placed here publishes this place", code="media_forbidden",
                        details={"place_id": place.public_id, "statute": CONFIDENTIAL})
    if member.status != "checked_in":
        raise Conflict("check in before going on camera", code="not_checked_in",
                       details={"member": member.public_id})
    return PublishGrant(es.id, es.public_id, place, who.user_id, who.public_id, "member")


async def watch_grant(session: AsyncSession, *, who: Principal, session_public_id: str) -> ViewGrant:
    """A supervisor of the tender: every place of the session, members' and room cameras."""
    loaded = await _load(session, session_public_id)
    if who.has(devices.DEVICE_ROLE):
        raise _device_forbidden(loaded.es, "", "a device watches nothing")
    if not is_supervisor_of(loaded.tender, who):
        raise Forbidden("the tender's supervisors watch its evaluation", code="media_forbidden",
                        details={"session_id": loaded.es.public_id, "statute": CONFIDENTIAL})
    _live(loaded.es)
    return ViewGrant(loaded.es.id, loaded.es.public_id, "supervisor", tuple(loaded.places.values()), who.public_id)


async def conference_grant(session: AsyncSession, *, who: Principal, session_public_id: str) -> ViewGrant:
    """A checked-in member: the other members' places."""
    loaded = await _load(session, session_public_id)
    if who.has(devices.DEVICE_ROLE):
        raise _device_forbidden(loaded.es, "", "a device joins no conference")
    es = loaded.es
    me = next((m for m in loaded.members if m.user_id is not None and m.user_id == who.user_id), None)
    if me is None:
        raise _no_media(es)
    _live(es)
    if me.status != "checked_in":
        raise Conflict("check in before joining the conference", code="not_checked_in",
                       details={"member": me.public_id})
    others = tuple(p for p in loaded.places.values()
                   if p.member_public_id is not None and p.member_public_id != me.public_id)
    return ViewGrant(es.id, es.public_id, "member", others, who.public_id, me.public_id,
                     es.chair_member_id is not None and es.chair_member_id == me.id)


async def set_muted(session: AsyncSession, *, who: Principal, session_public_id: str, place_public_id: str,
                    muted: bool) -> PlaceRef:
    """The chair mutes (or unmutes) a member's audio for everyone live; the ledger records it."""
    loaded = await _load(session, session_public_id)
    es = loaded.es
    me = next((m for m in loaded.members if m.user_id is not None and m.user_id == who.user_id), None)
    if me is None or es.chair_member_id != me.id:
        raise Forbidden("only the chair (组长) mutes a member", code="not_chair", details={"session_id": es.public_id})
    _live(es)
    place = next((p for p in loaded.places.values()
                  if p.public_id == place_public_id and p.member_public_id is not None), None)
    if place is None:
        raise NotFound("no member sits at this place", code="place_not_found", details={"place_id": place_public_id})
    await ledger.append(session, actor=who.public_id, action="evaluation.media.mute" if muted else
                        "evaluation.media.unmute", entity=members.entity(es),
                        payload={"place": place.public_id, "member": place.member_public_id, "muted": muted,
                                 "by": me.public_id})
    return place


async def place_labels(session: AsyncSession, session_id: int) -> dict[str, str]:
    es = (await session.execute(select(EvaluationSession).where(EvaluationSession.id == session_id))).scalar_one()
    return {at.place.public_id: at.place.label for at in await members.session_places(session, es)}
