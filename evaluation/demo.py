"""Demo venues and an evaluation waiting to be walked through.

The seed case's two trading centres — the Guangdong provincial centre in Guangzhou and the Zhongshan centre —
each with a remote-evaluation room, its places (席位) and a camera position, made by the demo admin through the
venue service so that every one is on the ledger. Then one tender, opened with 4 bids, whose lot's committee of
5 is drawn 2 + 3 across the two centres and placed at the session's main venue (Zhongshan) and sub-venue
(Guangzhou): every step through the services, as the agent, the bidders, the supervisor and the experts would
act, so the ledger tells the story as it would have happened.

The bids need their deadline to pass before the opening. The demo tender is published with its deadline a few
seconds ahead (the statutory periods are off in the demo), enough for the four bids on a slow machine; once they
are in, the seed brings the deadline forward to the database clock's now (a demo-only step, on the ledger as
`tender.demo_deadline`) instead of waiting, and the opening starts by the database clock as usual."""
from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, AsyncIterator

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import scheduler
from core.clock import db_now, passed
from core.errors import Unprocessable
from core.identity_models import Organisation, User
from core.keys import load_or_create_ed25519
from core.principal import Principal
from core.settings import Settings
from core.storage import Storage
from evaluation import members, venues
from evaluation import sessions as sessions_svc
from evaluation.models import Room, Site
from evidence import ledger_service as ledger
from evidence.ledger_service import LedgerSigner
from evidence.pki import Pki
from evidence.records_service import RecordsContext
from expert_pool import confirmations, draws
from expert_pool.models import Expert, ExpertDraw, ExpertInvitation
from trading import bids, keyholding, opening, participation, statutory, tenders
from trading.access import principal_of
from trading.bundle import make_bundle
from trading.demo import (DEMO_BIDDER_USERNAMES, DEMO_HOLDER_PASSPHRASE, DEMO_HOLDERS, EVALUATION,
                          SHOWCASE_THRESHOLD, ensure_demo_holder_keys, ensure_tenderers)
from trading.keyholding import PlatformKeyring
from trading.models import Tender
from trading.schemas import TenderIn

log = logging.getLogger(__name__)

DEMO_ADMIN = "admin"
# (name, region, address, [(room, [place labels], camera label)])
DEMO_SITES = [
    ("广东省公共资源交易中心", "440100", "广州市", [("远程异地评标室1", ["A-01", "A-02", "A-03"], "A-CAM"),
                                                 ("远程异地评标室2", ["C-01", "C-02", "C-03"], "C-CAM")]),
    ("中山市公共资源交易中心", "442000", "中山市", [("远程异地评标室", ["B-01", "B-02", "B-03", "B-04"], "B-CAM")]),
]


async def seed_venues(sessions: async_sessionmaker, console: Console, progress: Progress) -> None:
    """The two Guangdong centres with rooms and places, unless venues exist already."""
    async with sessions() as session, session.begin():
        if (await session.execute(select(func.count()).select_from(Site))).scalar_one():
            console.print("venues already seeded")
            return
        user = (await session.execute(select(User).where(User.username == DEMO_ADMIN))).scalar_one_or_none()
        if user is None:
            console.print("no demo admin: venues not seeded")
            return
        admin = Principal(user_id=user.id, public_id=user.public_id, organisation_id=user.organisation_id,
                          roles=frozenset(user.roles))
        table = Table(title="venues · 评标场地")
        for column in ("site 交易中心", "region", "room 评标室", "places 席位"):
            table.add_column(column)
        task = progress.add_task("venues 场地", total=sum(len(rooms) for *_, rooms in DEMO_SITES))
        for name, region, address, rooms in DEMO_SITES:
            site = await venues.create_site(session, who=admin, name=name, region_code=region, address=address)
            for room_name, labels, camera in rooms:
                room = await venues.create_room(session, who=admin, site_public_id=site.public_id, name=room_name,
                                                capacity=len(labels) + 2)
                for label in labels:
                    await venues.create_place(session, who=admin, room_public_id=room.public_id, label=label)
                await venues.create_place(session, who=admin, room_public_id=room.public_id, label=camera,
                                          camera_position=True)
                table.add_row(f"{name} {site.public_id}", region, f"{room_name} {room.public_id}", ", ".join(labels))
                progress.advance(task)
    console.print(table)


async def seed_demo(sessions: async_sessionmaker, console: Console, progress: Progress,
                    options: dict[str, Any]) -> None:
    """`bidroom demo seed`: the two Guangdong centres with rooms and places, then one tender opened with 4 bids
    whose lot waits for its evaluation: a committee of 5 drawn 2 + 3 across the two centres, the session
    scheduled at its main venue (主场, Zhongshan) and sub-venue (副场, Guangzhou), every member placed."""
    await seed_venues(sessions, console, progress)
    await seed_evaluation(sessions, console, options)


# ---------------------------------------------------------------------------------------------------------------
# An opened tender waiting for its cross-site evaluation (远程异地评标), made through the services
# ---------------------------------------------------------------------------------------------------------------

DEMO_TENDER_TITLE = "中山市火炬开发区中心小学教学楼新建工程施工（演示·已开标待评标）"
DEMO_BUDGET = Decimal("5000000.00")
DEMO_PRICES = ("4650000.00", "4720000.00", "4580000.00", "4810000.00")
# (quota, site region, experts, backups): 3 at the Zhongshan centre and 2 at the provincial centre in Guangzhou;
# the scarcer quota first, so that the larger Guangzhou pool cannot take the employers Zhongshan depends on
DEMO_QUOTAS = (("中山", "442000", 3, 1), ("广州", "440100", 2, 1))
MAIN_SITE, SUB_SITE = ("中山市公共资源交易中心", "远程异地评标室"), ("广东省公共资源交易中心", "远程异地评标室1")
# the bids are submitted within this many seconds of publication (ample on a loaded machine); once all four are in,
# the deadline is brought forward to the database's now and they are opened, without waiting out the window
DEFAULT_BIDDING_S = 10


@dataclass
class _Cast:
    admin: User
    agent: User
    supervisor: User
    bidders: list[User]


async def _cast(session: AsyncSession) -> _Cast | None:
    wanted = ("admin", *DEMO_HOLDERS, *DEMO_BIDDER_USERNAMES)
    users = {u.username: u for u in (await session.execute(select(User).where(User.username.in_(wanted)))).scalars()}
    if set(users) != set(wanted):
        return None
    return _Cast(users["admin"], users["agent"], users["supervisor"], [users[u] for u in DEMO_BIDDER_USERNAMES])


async def _room(session: AsyncSession, site_name: str, room_name: str) -> str | None:
    return (await session.execute(select(Room.public_id).join(Site, Site.id == Room.site_id).where(
        Site.name == site_name, Room.name == room_name, Room.status == "active"))).scalar_one_or_none()


async def _specialties(session: AsyncSession, city: str) -> list[str]:
    """The specialty roots (A…E) of the active experts with a login in `city`, those with the most distinct
    employers first (a committee takes one person per employer)."""
    rows = (await session.execute(select(Expert.specialties, Expert.employer_id).where(
        Expert.city_code == city, Expert.status == "active", Expert.user_id.is_not(None)))).all()
    employers: dict[str, set] = {}
    for specialties, employer in rows:
        for root in {s[0] for s in specialties or ()}:
            employers.setdefault(root, set()).add(employer)
    return sorted(employers, key=lambda r: (-len(employers[r]), r))


def _records(settings: Settings, sessions: async_sessionmaker) -> RecordsContext:
    pki = Pki.load_or_create(settings.keys_dir / "pki", public_url=settings.public_url)
    return RecordsContext(pki=pki, directory=settings.storage_dir, public_url=settings.public_url,
                          ledger_signer=LedgerSigner(load_or_create_ed25519(settings.keys_dir / "ledger_ed25519.pem")),
                          sessions=sessions, statutory_periods=settings.statutory_periods)


def _documents(i: int, name: str) -> dict[str, bytes]:
    """A demo bid's documents: small text stand-ins for the letter of tender and the qualification file."""
    return {"投标函.txt": f"投标函\n投标人：{name}\n投标报价：{DEMO_PRICES[i]} 元\n工期：365 日历天\n".encode(),
            "资格证明文件/营业执照及资质证书.txt": f"{name}\n建筑工程施工总承包贰级\n安全生产许可证有效\n".encode()}


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def seed_evaluation(sessions: async_sessionmaker, console: Console, options: dict[str, Any]) -> str | None:
    """The opened demo tender with its evaluation session scheduled and its committee placed; returns the
    session's public id (None when skipped). Every step goes through the services, as its users would act.

    Options: `settings` (required), `evaluation_bidding_s`, and for a further such tender beside the demo's own
    `evaluation_title` (default DEMO_TENDER_TITLE: one tender per title) and `evaluation_day` (its session that
    many days later, so that its bookings do not overlap the first one's)."""
    settings: Settings | None = options.get("settings")
    title = options.get("evaluation_title", DEMO_TENDER_TITLE)
    if settings is None:
        console.print("evaluation demo skipped: it needs the platform settings (keys and storage)")
        return None
    async with sessions() as session:
        cast_ = await _cast(session)
        if cast_ is None:
            console.print("evaluation demo skipped: it needs the demo accounts (admin, agent, supervisor, bidders)")
            return None
        existing = (await session.execute(select(Tender.code).where(
            Tender.title == title, Tender.created_by_id == cast_.agent.id))).scalars().first()
        if existing is not None:
            console.print(f"evaluation demo already seeded: tender {existing}")
            return None
        rooms = {role: await _room(session, *where) for role, where in (("main", MAIN_SITE), ("sub", SUB_SITE))}
        specialties = {q: await _specialties(session, region) for q, region, _, _ in DEMO_QUOTAS}
    if None in rooms.values() or not all(specialties.values()):
        console.print("evaluation demo skipped: it needs the demo venues and enough pool experts in Guangzhou and "
                      "Zhongshan (seed the pool with --experts 200 or more)")
        return None
    agent, supervisor = principal_of(cast_.agent), principal_of(cast_.supervisor)
    await ensure_demo_holder_keys(sessions)

    # the bids' bundles are made before the window opens
    bundles = [make_bundle({"price": DEMO_PRICES[i], "duration_days": 365, "declared": {"质量标准": "合格"}},
                           _documents(i, user.display_name)) for i, user in enumerate(cast_.bidders)]

    # 1. the agent drafts, seals and publishes the tender; the four demo bidders register for its lot
    async with sessions() as session, session.begin():
        now = await db_now(session)
        deadline = now + timedelta(seconds=int(options.get("evaluation_bidding_s", DEFAULT_BIDDING_S)))
        tenderer = (await ensure_tenderers(session, random.Random()))["ZS"][0]
        supervision = await session.get(Organisation, cast_.supervisor.organisation_id)
        draft = await tenders.create_tender(session, agent, TenderIn(
            title=title, tenderer=(await session.get(Organisation, tenderer)).public_id,
            description="演示项目：已开标，评标委员会5人（广州2人、中山3人）已抽取并确认，评标会议已安排在中山主场、"
                        "广州副场。专家登录后即可签到、推选组长、评审。",
            supervisor_organisation=supervision.public_id, region_code="ZS", family="FJSZ", subtype="FJSZ-SG",
            method="open", budget=DEMO_BUDGET, lots=[], evaluation=EVALUATION, clarification_end_at=deadline,
            bid_deadline_at=deadline, opening_at=deadline, key_threshold=SHOWCASE_THRESHOLD,
            key_holder_count=len(DEMO_HOLDERS)).model_dump())
        await keyholding.set_key_holders(session, draft, [cast_.agent.public_id, cast_.supervisor.public_id],
                                         SHOWCASE_THRESHOLD, actor=cast_.agent.public_id)
        # the demo's deadline is seconds away, not the statutory 20 days
        tender = await tenders.publish(session, agent, draft.code, periods=statutory.RELAXED)
        code = tender.code
        [lot] = await tenders.lots_of(session, tender.id)
        lot_id = lot.public_id
        for user in cast_.bidders:
            await participation.register_for_lot(session, principal_of(user), lot_id)

    # 2. each bidder uploads its bid bundle, sealed by the platform to the tender's key as it streams in; then the
    # bidding window closes at once (the demo does not wait out its seconds)
    signer = LedgerSigner(load_or_create_ed25519(settings.keys_dir / "ledger_ed25519.pem"))
    storage = Storage(settings.storage_dir)
    for i, (user, data) in enumerate(zip(cast_.bidders, bundles)):
        who = principal_of(user)
        async with sessions() as session:
            target = await bids.bid_target(session, code, lot_id, who)
        received = await bids.receive_bid(_chunks(data), target, storage, max_bytes=settings.max_upload_bytes)
        async with sessions() as session, session.begin():
            await bids.record_bid(session, target, received, who, signer=signer)
    async with sessions() as session, session.begin():
        await _close_bidding_now(session, code)

    # 3. the agent books the two rooms and schedules the session: main venue Zhongshan, sub-venue Guangzhou
    async with sessions() as session, session.begin():
        now = await db_now(session)
        starts = (now + timedelta(days=int(options.get("evaluation_day", 0)), minutes=10)).replace(
            second=0, microsecond=0)
        booked = {role: await venues.book_room(session, who=agent, room_public_id=room, starts_at=starts,
                                               ends_at=starts + timedelta(hours=8), label="演示评标",
                                               tender_code=code, lot_public_id=lot_id if role == "main" else None)
                  for role, room in rooms.items()}
        view = await sessions_svc.schedule_session(session, who=agent, lot_public_id=lot_id,
                                                   main_booking=booked["main"].booking.public_id,
                                                   sub_bookings=[booked["sub"].booking.public_id])
        session_id = view.session.public_id

    # 4. the committee is drawn while the bids are sealed, its venue the session; the supervisor's entropy runs it.
    # The agent picks the specialties the two centres can staff (one expert per employer), as one would by
    # asking again with a wider specialty when the platform answers insufficient_candidates
    entropy = secrets.token_hex(16)
    draw_id = None
    async with sessions() as session, session.begin():
        for choice in itertools.product(*specialties.values()):
            quotas = [{"name": q, "specialty": root, "region": region, "count": n, "backups": backups}
                      for (q, region, n, backups), root in zip(DEMO_QUOTAS, choice)]
            try:
                async with session.begin_nested():
                    draw = await draws.create_draw(session, who=agent, lot_public_id=lot_id, session_at=starts,
                                                   evaluation_session=session_id, quotas=quotas)
            except Unprocessable as refused:
                if refused.code != "insufficient_candidates":
                    raise
                continue
            draw_id = draw.public_id
            break
    if draw_id is None:
        console.print(f"evaluation demo stopped: the pool cannot staff the committee; tender {code} and session "
                      f"{session_id} wait for a draw (seed the pool with more experts)")
        return None
    async with sessions() as session, session.begin():
        await confirmations.supply_entropy(session, who=supervisor, draw_public_id=draw_id, entropy=entropy)

    # 5. every invited expert signs in and accepts
    async with sessions() as session:
        invited = (await session.execute(
            select(ExpertInvitation.public_id, User).join(Expert, Expert.id == ExpertInvitation.expert_id)
            .join(User, User.id == Expert.user_id).join(ExpertDraw, ExpertDraw.id == ExpertInvitation.root_draw_id)
            .where(ExpertDraw.public_id == draw_id, ExpertInvitation.status == "pending"))).all()
    for invitation_id, user in invited:
        async with sessions() as session, session.begin():
            await confirmations.reply(session, who=principal_of(user), invitation_public_id=invitation_id,
                                      accept=True)

    # 6. the deadline has passed (by the database clock) and the two key holders open the bids
    keyring = PlatformKeyring.from_keys_dir(settings.keys_dir)
    records = await asyncio.to_thread(_records, settings, sessions)
    async with sessions() as session, session.begin():
        await opening.start_opening(session, code, agent, keyring=keyring, records=records)
    for holder in (agent, supervisor):
        async with sessions() as session, session.begin():
            await opening.submit_share(session, code, holder, DEMO_HOLDER_PASSPHRASE, pool=None, keyring=keyring,
                                       records=records, storage_dir=settings.storage_dir)

    # 7. the agent forms the committee from the confirmed draw; each member gets a place at their own centre
    async with sessions() as session, session.begin():
        formed = await members.form_committee(session, who=agent, session_public_id=session_id)
        lines = []
        for m in formed.members:
            expert = await session.get(Expert, m.member.expert_id)
            user = await session.get(User, m.member.user_id)
            at = m.place
            lines.append((user.username, expert.name, m.member.public_id, at.site.name if at else "-",
                          at.venue_role if at else "-", at.place.label if at else "-", expert.id_card_no[-4:]))
    _print_next_steps(console, settings, code, lot_id, session_id, draw_id, lines)
    return session_id


async def _close_bidding_now(session: AsyncSession, code: str) -> None:
    """Demo only: the bids are in, so the tender's deadline (and its opening time) moves to the database's now
    rather than the seed waiting out the rest of its window; on the ledger, with the deadline it replaces. A real
    tender's deadline only ever moves out (an amendment, tenders.amend)."""
    tender = await tenders.get_tender(session, code, lock="update")
    now = await db_now(session)
    before = tender.bid_deadline_at
    if passed(before, now):
        return  # a slow machine took the whole window
    tender.clarification_end_at = min(tender.clarification_end_at, now)
    tender.bid_deadline_at = tender.opening_at = tender.updated_at = now
    await scheduler.reschedule(session, tenders.close_job_key(tender.id), now)
    await ledger.append(session, actor=ledger.SYSTEM, action="tender.demo_deadline", entity=f"tender:{code}",
                        payload={"bid_deadline_before": before.isoformat(), "bid_deadline_after": now.isoformat(),
                                 "reason": "demo: every demo bid is in, bidding closes now"})


def _print_next_steps(console: Console, settings: Settings, code: str, lot_id: str, session_id: str,
                      draw_id: str, lines: list[tuple]) -> None:
    table = Table(title=f"evaluation demo · 远程异地评标演示: tender {code} opened with 4 bids, session {session_id}")
    for column in ("expert login 专家账号", "name", "member 成员", "site 交易中心", "venue 场", "place 席位",
                   "ID card last 4 身份证后四位"):
        table.add_column(column)
    for username, name, member, site, role, place, last4 in lines:
        table.add_row(username, name, member, site, "主场 main" if role == "main" else "副场 sub", place, last4)
    console.print(table)
    base, es = settings.public_url.rstrip("/"), f"{settings.public_url.rstrip('/')}/api/v1/evaluation-sessions/" \
                                                f"{session_id}"
    console.print(
        "next 下一步 — every account's password is the demo password; agent and supervisor add their TOTP code:\n"
        f"  login:   curl -s -X POST {base}/api/v1/auth/login -H 'Content-Type: application/json' "
        "-d '{\"username\":\"<login>\",\"password\":\"<password>\",\"totp\":\"<code>\"}'   → access_token\n"
        f"  1 agent opens check-in:      curl -X POST -H \"Authorization: Bearer $AGENT\" {es}/check-in/open\n"
        f"  2 each expert reads the declaration and checks in at their place:\n"
        f"       curl -H \"Authorization: Bearer $EXPERT\" {es}/declaration\n"
        f"       curl -X POST -H \"Authorization: Bearer $EXPERT\" -H 'Content-Type: application/json' {es}/check-in "
        "-d '{\"id_card_last4\":\"<last 4>\",\"commitment\":true,\"conflicts\":[]}'\n"
        f"  3 agent starts the evaluation (the tender moves to evaluating): curl -X POST "
        f"-H \"Authorization: Bearer $AGENT\" {es}/start\n"
        f"  4 members elect the chair (a majority of 5): curl -X POST -H \"Authorization: Bearer $EXPERT\" "
        f"-H 'Content-Type: application/json' {es}/chair/votes -d '{{\"candidate\":\"<member id>\"}}'\n"
        f"  5 members read the opened bids: curl -H \"Authorization: Bearer $EXPERT\" {es}/bids\n"
        f"  supervisor follows it live:  curl -H \"Authorization: Bearer $SUPERVISOR\" "
        f"{base}/api/v1/supervision/evaluation-sessions\n"
        f"  the draw {draw_id} (its venue is the session): {base}/api/v1/draws/{draw_id}; the lot: {lot_id}")
