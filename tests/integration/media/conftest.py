"""Media tests: short segments (5 s) so a 20 s publication closes several; evaluation sessions in progress written
straight to the database (the evaluation domain's own tests cover reaching that state over HTTP, which takes a
minute and a half of sign-ins on this machine), and access tokens issued by the app's own token issuer."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from core.identity_models import Organisation, User
from core.settings import Settings
from evaluation.models import EvaluationMember, EvaluationSession, Place, Room, RoomBooking, Site
from expert_pool.models import Expert, ExpertDraw, ExpertInvitation
from trading.models import Lot, Tender
from web.keys import TOKENS

_n = itertools.count(1)


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=db_url, run_scheduler=False, log_json=False,
                    public_url="http://127.0.0.1:8080", max_body_bytes=64 * 1024, statutory_periods=False,
                    media_segment_s=5.0, media_watchdog_s=0.5)


@dataclass
class Person:
    public_id: str
    token: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Member:
    member_id: str
    place_id: str
    person: Person
    kind: str = "expert"


@dataclass
class Live:
    session_id: str
    members: list[Member]            # members[0] is the chair
    supervisor: Person
    camera_place: str
    agent: Person
    people: dict = field(default_factory=dict)


class Builder:
    def __init__(self, session, tokens) -> None:
        self.s, self.tokens = session, tokens

    async def org(self, name: str, kind: str = "company") -> Organisation:
        n = next(_n)
        org = Organisation(public_id=f"ORG-M{n:05d}", name=f"{name}{n}", kind=kind,
                           social_credit_code=f"91440000MA{n:08d}")
        self.s.add(org)
        await self.s.flush()
        return org

    async def user(self, role: str, org: Organisation | None = None) -> tuple[User, Person]:
        n = next(_n)
        user = User(public_id=f"US-M{n:06d}", username=f"media-{role}-{n}", display_name=f"{role} {n}",
                    password_hash="not-used", roles=[role], organisation_id=org.id if org else None)
        self.s.add(user)
        await self.s.flush()
        token = self.tokens.issue(sub=user.public_id, roles=[role], org=org.public_id if org else None)
        return user, Person(user.public_id, token)


async def build_session(sessions, app, *, experts: int = 3, representatives: int = 0) -> Live:
    """A tender with a lot, a site with one room of places and a room camera, and an evaluation session in
    progress whose members are checked in at their places; the first member is the chair."""
    now = datetime.now(timezone.utc)
    async with sessions() as session, session.begin():
        b = Builder(session, app[TOKENS])
        tenderer, supervising, agency = (await b.org("中山市人民医院"), await b.org("中山市住建局", "authority"),
                                         await b.org("广东中诚招标代理有限公司"))
        agent_user, agent = await b.user("agent", agency)
        _sup_user, supervisor = await b.user("supervisor", supervising)
        n = next(_n)
        tender = Tender(code=f"ZS-2026-FJSZ-M{n:04d}", title="道路改造工程施工", family="FJSZ", subtype="FJSZ-SG",
                        method="open", region_code="ZS", status="evaluating", tenderer_id=tenderer.id,
                        supervisor_organisation_id=supervising.id, created_by_id=agent_user.id,
                        agent_id=agency.id, budget=Decimal("5000000.00"))
        session.add(tender)
        await session.flush()
        lot = Lot(public_id=f"{tender.code}-L01", tender_id=tender.id, lot_no=1, title="第一标段",
                  budget=Decimal("5000000.00"))
        site = Site(public_id=f"ST-M{n:05d}", name=f"中山市公共资源交易中心{n}", region_code="442000")
        session.add_all([lot, site])
        await session.flush()
        room = Room(public_id=f"RM-M{n:05d}", site_id=site.id, name="远程异地评标室")
        session.add(room)
        await session.flush()
        count = experts + representatives
        places = [Place(public_id=f"PL-M{n:03d}{i:02d}", room_id=room.id, label=f"B-{i + 1:02d}")
                  for i in range(count)]
        camera = Place(public_id=f"PL-M{n:03d}CM", room_id=room.id, label="全景", camera_position=True)
        session.add_all([*places, camera])
        es = EvaluationSession(public_id=f"ES-M{n:06d}", tender_id=tender.id, lot_id=lot.id, status="in_progress",
                               created_by_id=agent_user.id, started_at=now)
        session.add(es)
        await session.flush()
        session.add(RoomBooking(public_id=f"BK-M{n:06d}", room_id=room.id, starts_at=now - timedelta(hours=1),
                                ends_at=now + timedelta(hours=8), tender_id=tender.id, lot_id=lot.id,
                                evaluation_session_id=es.id, venue_role="main", label="第一标段评标",
                                booked_by_id=agent_user.id))
        draw = ExpertDraw(public_id=f"DR-M{n:06d}", tender_id=tender.id, lot_id=lot.id, session_at=now,
                          venue="中山", members=count, representatives=representatives, reply_window_s=3600,
                          quotas=[], request={}, candidates=[], candidates_digest="0" * 64, considered_count=0,
                          eligible_count=0, exclusion_counts={}, secret=b"s", commitment="0" * 64,
                          status="formed")
        session.add(draw)
        await session.flush()
        members: list[Member] = []
        rows: list[EvaluationMember] = []
        for i, place in enumerate(places):
            kind = "expert" if i < experts else "representative"
            user, person = await b.user("expert" if kind == "expert" else "purchaser",
                                        None if kind == "expert" else tenderer)
            expert_id = invitation_id = None
            if kind == "expert":
                expert = Expert(public_id=f"EX-M{n:03d}{i:02d}", user_id=user.id, name=f"专家{i}",
                                id_card_no=f"44200019800101{n % 100:02d}{i:02d}", phone="13800000000",
                                province_code="440000", city_code="442000", category="technical",
                                specialties=["A0101"])
                session.add(expert)
                await session.flush()
                invitation = ExpertInvitation(public_id=f"IV-M{n:03d}{i:02d}", root_draw_id=draw.id,
                                              draw_id=draw.id, expert_id=expert.id, quota="中山", seat=i + 1,
                                              source="primary", status="accepted", reply_by=now)
                session.add(invitation)
                await session.flush()
                expert_id, invitation_id = expert.id, invitation.id
            member = EvaluationMember(public_id=f"EM-M{n:03d}{i:02d}", session_id=es.id, kind=kind,
                                      expert_id=expert_id, invitation_id=invitation_id, user_id=user.id,
                                      quota="中山" if kind == "expert" else None, seat=i + 1 if kind == "expert" else None,
                                      region_code="442000", place_id=place.id, status="checked_in",
                                      checked_in_at=now)
            session.add(member)
            rows.append(member)
            members.append(Member(member.public_id, place.public_id, person, kind))
        await session.flush()
        es.chair_member_id, es.chair_how = rows[0].id, "majority"
        return Live(es.public_id, members, supervisor, camera.public_id, agent)


@pytest.fixture
async def live(sessions, client) -> Live:
    return await build_session(sessions, client.server.app)
