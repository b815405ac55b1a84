"""Demo tenders: Chinese titles across Guangdong cities and all four trading families, made as an agent makes them.

`seed_demo` is the hook that `bidroom demo seed --tenders N` calls, with a rich progress bar. The N listing tenders
go through the trading services as the demo agent would act (draft, key holders, publish; now and then a
cancellation with its reason), each step with its ledger entry: published and taking registrations, sealed 2-of-2
to the demo `agent` and `supervisor`, whose holder keys are enrolled under DEMO_HOLDER_PASSPHRASE. After them come a
few *showcase* tenders, made the same way, that the demo bidders are registered for and can bid on at once. A
tender further on (opened, evaluating, candidates, awarded) is only ever reached by walking it there: the evaluation
demo (evaluation/demo.py) does that for one.

`demo_rows` is a plain generator of table rows for bench/listing.py, which times the listing over 100,000 tenders
inserted in bulk in every state; the demo does not use it.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterator

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import identity_service
from core.clock import db_now
from core.identity_models import Organisation, User
from core.identity_rules import uscc_check_char
from core.notifications import InAppNotifier
from evidence import ledger_service as ledger
from trading import keyholding, participation, statutory, tenders
from trading.access import principal_of
from trading.codes import load_categories, tender_code
from trading.listing.search_terms import tender_terms
from trading.models import Tender
from trading.schemas import TenderIn

log = logging.getLogger(__name__)

BATCH = 2_000          # bench/listing.py's rows per INSERT
BULK_BATCH = 50        # the demo's tenders per transaction
BULK_CANCEL_EVERY = 16  # one listing tender in 16 is cancelled by the agent
CANCEL_REASONS = ("项目资金调整，招标人决定终止本次招标。", "项目建设方案变更，终止招标，择期重新招标。",
                  "因上级主管部门规划调整，本项目终止招标。")
# Guangdong's 21 cities: code prefix, Chinese name, a landmark or district used in titles
CITIES = (
    ("GZ", "广州", "天河区"), ("SZ", "深圳", "南山区"), ("ZH", "珠海", "香洲区"), ("ST", "汕头", "龙湖区"),
    ("FS", "佛山", "南海区"), ("SG", "韶关", "武江区"), ("ZJ", "湛江", "赤坎区"), ("ZQ", "肇庆", "端州区"),
    ("JM", "江门", "蓬江区"), ("MM", "茂名", "茂南区"), ("HZ", "惠州", "惠城区"), ("MZ", "梅州", "梅江区"),
    ("SW", "汕尾", "城区"), ("HY", "河源", "源城区"), ("YJ", "阳江", "江城区"), ("QY", "清远", "清城区"),
    ("DG", "东莞", "松山湖"), ("ZS", "中山", "火炬开发区"), ("CZ", "潮州", "湘桥区"), ("JY", "揭阳", "榕城区"),
    ("YF", "云浮", "云城区"),
)
TENDERER_PATTERNS = ("{city}市交通运输局", "{city}市人民医院", "{city}市教育局", "{city}市住房和城乡建设局",
                     "{city}市自然资源局", "{city}市水务局", "{city}市城市管理和综合执法局", "{city}市国有资产监督管理委员会")
# title patterns per sub-type family; {city} {place} {n} are filled in
TITLES = {
    "FJSZ": ("{city}市{place}{road}道路改造工程施工", "{city}市{place}学校教学楼新建工程", "{city}市{place}污水管网完善工程",
             "{city}市{place}人民医院住院楼建设项目", "{city}市{place}{road}桥梁维修加固工程", "{city}市{place}保障性住房项目"),
    "ZFCG": ("{city}市{place}医疗设备采购项目", "{city}市{place}智慧城市平台建设服务", "{city}市{place}物业管理服务采购",
             "{city}市{place}中小学课桌椅采购", "{city}市{place}公务用车定点维修服务", "{city}市{place}办公电脑批量采购"),
    "TDKY": ("{city}市{place}国有建设用地使用权挂牌出让", "{city}市{place}商住用地使用权拍卖", "{city}市{place}建筑用砂岩采矿权出让"),
    "GYCQ": ("{city}市{place}国有企业股权转让", "{city}市{place}商铺租赁权招租", "{city}市{place}公交线路特许经营权出让"),
}
ROADS = ("中山路", "解放路", "人民路", "滨海大道", "环城路", "建设路", "东风路", "沿江路")
STATES = (("published", 60), ("closed", 12), ("opened", 6), ("evaluating", 6), ("candidates_published", 5),
          ("awarded", 5), ("cancelled", 3), ("failed", 3))
METHODS = {"FJSZ": ("open", "invitational"), "ZFCG": ("open", "competitive_negotiation", "inquiry", "single_source"),
           "TDKY": ("open",), "GYCQ": ("open",)}
EVALUATION = {"method": "comprehensive", "criteria": [
    {"name": "技术方案", "max": "40", "objective": False}, {"name": "项目经理业绩", "max": "20", "objective": True},
    {"name": "企业信誉", "max": "10", "objective": True}], "price_weight": "30",
    "price_formula": {"rule": "lowest_price"}, "aggregation": "mean", "decimals": 2}


def _budget(rng: random.Random, family: str) -> Decimal:
    low, high = {"FJSZ": (500_000, 300_000_000), "ZFCG": (50_000, 20_000_000), "TDKY": (5_000_000, 900_000_000),
                 "GYCQ": (200_000, 80_000_000)}[family]
    # log-uniform, so small projects are common and a few are large
    value = Decimal(str(round(low * (high / low) ** rng.random(), -2)))
    return value.quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Listed:
    """What one listing tender is about: its city, family, subtype, title and description."""

    region: str
    family: str
    subtype: Any
    title: str
    description: str


def _listed(rng: random.Random, catalogue, tenderers: dict[str, tuple[int, str]]) -> Listed:
    region, city, place = rng.choice(CITIES)
    family = rng.choices(("FJSZ", "ZFCG", "TDKY", "GYCQ"), weights=(40, 45, 8, 7))[0]
    sub = rng.choice(catalogue.family(family).subtypes)
    title = rng.choice(TITLES[family]).format(city=city, place=place, road=rng.choice(ROADS))
    description = f"{tenderers[region][1]}委托的{catalogue.family(family).zh}{sub.zh}项目，资金已落实，欢迎合格供应商参加。"
    return Listed(region, family, sub, title, description)


def demo_rows(rng: random.Random, n: int, *, now: datetime, tenderers: dict[str, tuple[int, str]],
              agent_org_id: int | None, created_by_id: int, supervisor_org_id: int | None = None,
              codes: dict[tuple[str, str], list[str]] | None = None) -> Iterator[dict[str, Any]]:
    """`n` tender rows; `tenderers` maps a city prefix to (organisation id, name); codes come from `codes` or are
    numbered from 1 per (city, family) when None (bench)."""
    catalogue = load_categories()
    counters: dict[tuple[str, str], int] = {}
    states, weights = zip(*STATES)
    for _ in range(n):
        it = _listed(rng, catalogue, tenderers)
        region, family, sub, title, description = it.region, it.family, it.subtype, it.title, it.description
        status = rng.choices(states, weights=weights)[0]
        if codes is not None:
            code = codes[(region, family)].pop()
        else:
            counters[(region, family)] = counters.get((region, family), 0) + 1
            code = tender_code(region, now.year, family, counters[(region, family)])
        # open tenders have their deadline ahead; later states were published further back
        published = now - timedelta(days=rng.uniform(1, 15) if status == "published" else rng.uniform(25, 200))
        deadline = published + timedelta(days=20 + rng.randint(0, 10), hours=rng.randint(0, 8))
        tenderer_id, tenderer_name = tenderers[region]
        yield dict(code=code, title=title, description=description, family=family, subtype=sub.code,
                   method=rng.choice(METHODS[family]), region_code=region, status=status, tenderer_id=tenderer_id,
                   agent_id=agent_org_id, supervisor_organisation_id=supervisor_org_id, created_by_id=created_by_id,
                   budget=_budget(rng, family), currency="CNY",
                   evaluation=EVALUATION, published_at=published, clarification_end_at=deadline - timedelta(days=3),
                   bid_deadline_at=deadline, opening_at=deadline, key_threshold=2, key_holder_count=3,
                   search_terms=tender_terms(title, code, description, tenderer_name),
                   created_at=published, updated_at=deadline if status != "published" else published)


def _uscc(seq: int) -> str:
    first17 = f"124420{seq:011d}"[:17]
    return first17 + uscc_check_char(first17)


async def ensure_tenderers(session: AsyncSession, rng: random.Random) -> dict[str, tuple[int, str]]:
    """One tenderer organisation per city (created once, found again on later runs)."""
    out: dict[str, tuple[int, str]] = {}
    for i, (region, city, _) in enumerate(CITIES):
        name = TENDERER_PATTERNS[i % len(TENDERER_PATTERNS)].format(city=city)
        org = (await session.execute(select(Organisation).where(Organisation.name == name))).scalars().first()
        if org is None:
            org = await identity_service.create_organisation(
                session, actor=ledger.SYSTEM, name=name, social_credit_code=_uscc(900_000 + i),
                kind="public_institution", region_code=region)
        out[region] = (org.id, org.name)
    return out


async def seed_demo(sessions: async_sessionmaker, console: Console, progress: Progress, options: dict) -> None:
    """Make options["tenders"] bulk demo tenders (one lot each) behind a progress bar, then the sealed showcase
    tenders (options["showcase"], default all of SHOWCASE) that demo bidders can bid on."""
    total = int(options.get("tenders", 40))
    if total > 0:
        await _seed_bulk(sessions, console, progress, options, total)
    await seed_showcase(sessions, console, count=int(options.get("showcase", len(SHOWCASE))))


async def _seed_bulk(sessions: async_sessionmaker, console: Console, progress: Progress, options: dict,
                     total: int) -> None:
    """The listing's tenders, made through the trading services as the demo agent makes a real one: drafted, sealed
    2-of-2 to the demo holders (the agent and the supervisor), published; one in BULK_CANCEL_EVERY then cancelled by
    the agent with its reason (终止招标, 招标投标法实施条例 第31条). Every step writes its own ledger entry, as for a
    real tender. A tender in a later state (opened, evaluating, awarded) is reached only by the walk that takes it
    there: the showcase tenders and the evaluation demo."""
    rng = random.Random(options.get("seed", 20260301))
    async with sessions() as session:
        staff = await _users(session, DEMO_HOLDERS)
    if set(staff) != set(DEMO_HOLDERS):
        console.print("demo tenders skipped: they need the demo accounts " + ", ".join(DEMO_HOLDERS))
        return
    await ensure_demo_holder_keys(sessions)
    async with sessions() as session, session.begin():
        tenderers = await ensure_tenderers(session, rng)
        publics = {region: (await session.get(Organisation, org_id)).public_id
                   for region, (org_id, _name) in tenderers.items()}
        staff = await _users(session, DEMO_HOLDERS)
        supervision = await session.get(Organisation, staff["supervisor"].organisation_id)
    agent = principal_of(staff["agent"])
    holders = [staff[u].public_id for u in DEMO_HOLDERS]
    notifier = InAppNotifier()
    task = progress.add_task("tenders 招标项目", total=total)
    made = cancelled = 0
    while made < total:
        size = min(BULK_BATCH, total - made)
        async with sessions() as session, session.begin():
            now = await db_now(session)
            for body in listing_bodies(random.Random(rng.random()), size, now=now, tenderers=tenderers,
                                       tenderer_ids=publics, supervision=supervision.public_id if supervision
                                       else None):
                draft = await tenders.create_tender(session, agent, body)
                await keyholding.set_key_holders(session, draft, holders, SHOWCASE_THRESHOLD,
                                                 actor=agent.public_id)
                # the demo's deadlines are 10 to 30 days away; the statutory 20 days are not enforced in the demo
                tender = await tenders.publish(session, agent, draft.code, periods=statutory.RELAXED)
                made += 1
                if made % BULK_CANCEL_EVERY == 0:
                    await tenders.cancel(session, agent, tender.code, rng.choice(CANCEL_REASONS), notifier)
                    cancelled += 1
        progress.advance(task, size)
    async with sessions() as session:
        count = (await session.execute(select(func.count()).select_from(Tender))).scalar_one()
    console.print(f"{made} demo tenders published 招标项目, {cancelled} of them cancelled ({count} in all)")


def listing_bodies(rng: random.Random, n: int, *, now: datetime, tenderers: dict[str, tuple[int, str]],
                   tenderer_ids: dict[str, str], supervision: str | None) -> Iterator[dict[str, Any]]:
    """`n` drafts (schemas.TenderIn) over Guangdong's cities and the four trading families, each with its bid
    deadline 10 to 30 days after `now`, sealed 2-of-2."""
    catalogue = load_categories()
    for _ in range(n):
        it = _listed(rng, catalogue, tenderers)
        deadline = now + timedelta(days=rng.randint(10, 30), hours=rng.randint(0, 8))
        yield TenderIn(title=it.title, description=it.description, tenderer=tenderer_ids[it.region],
                       supervisor_organisation=supervision, region_code=it.region, family=it.family,
                       subtype=it.subtype.code, method=rng.choice(METHODS[it.family]),
                       budget=_budget(rng, it.family), lots=[],
                       evaluation=EVALUATION, clarification_end_at=deadline - timedelta(days=3),
                       bid_deadline_at=deadline, opening_at=deadline, key_threshold=SHOWCASE_THRESHOLD,
                       key_holder_count=len(DEMO_HOLDERS)).model_dump()


# ---------------------------------------------------------------------------------------------------------------
# Showcase tenders: sealed, published through the services, open for bids
# ---------------------------------------------------------------------------------------------------------------

# Printed on the console and used by the demo key holders at the opening; never used outside the demo.
DEMO_HOLDER_PASSPHRASE = "bidroom-demo-holder-2026"
# The demo accounts (web/demo.py DEMO_ACCOUNTS) who hold the keys: the agency's agent and the centre's
# supervisor, so that neither alone can open the bids (开标须监督人员在场).
DEMO_HOLDERS = ("agent", "supervisor")
DEMO_BIDDER_USERNAMES = ("bidder1", "bidder2", "bidder3", "bidder4")
SHOWCASE_THRESHOLD = 2


@dataclass(frozen=True)
class ShowcaseTender:
    """One showcase tender as the demo agent would draft it."""

    title: str
    family: str
    subtype: str
    method: str
    budget: Decimal
    lots: tuple[tuple[str, Decimal], ...]
    deadline_days: int
    register_demo_bidders: bool   # True: bidder1..4 are registered for every lot, so they can bid at once
    description: str


SHOWCASE = (
    ShowcaseTender("中山市人民医院门诊楼节能改造工程施工（演示·可投标）", "FJSZ", "FJSZ-SG", "open",
                   Decimal("8600000.00"), (("第一标段 外墙及门窗", Decimal("5200000.00")),
                                           ("第二标段 空调及照明", Decimal("3400000.00"))),
                   3, True, "演示项目：四家演示投标人已报名全部标段，登录后即可上传投标文件。"
                            "投标文件在平台上加密封存，开标时须招标代理与监督人员两人共同解密。"),
    ShowcaseTender("中山市人民医院医学影像设备采购项目（演示·可报名）", "ZFCG", "ZFCG-HW", "open",
                   Decimal("4800000.00"), (("包一 彩色多普勒超声诊断仪", Decimal("2600000.00")),
                                           ("包二 数字化X射线摄影系统", Decimal("2200000.00"))),
                   4, False, "演示项目：尚无投标人报名，请以投标人身份登录，先报名所投的包，再上传投标文件。"),
    ShowcaseTender("中山市人民医院院区绿化养护服务采购（演示）", "ZFCG", "ZFCG-FW", "competitive_negotiation",
                   Decimal("960000.00"), (), 5, False, "演示项目：单一标段的服务采购，采用竞争性谈判。"),
)


def _showcase_evaluation(subtype: str) -> dict[str, Any]:
    # standard goods go to the lowest price (最低评标价法); works and services are scored (综合评估法)
    return {"method": "lowest_price"} if subtype == "ZFCG-HW" else EVALUATION


def showcase_body(spec: ShowcaseTender, tenderer_public_id: str, now: datetime,
                  supervisor_organisation: str | None = None) -> dict[str, Any]:
    """The draft (schemas.TenderIn) for a showcase tender, its deadline `spec.deadline_days` after `now`,
    supervised by the organisation of the demo supervisor."""
    deadline = now + timedelta(days=spec.deadline_days)
    body = TenderIn(title=spec.title, description=spec.description, tenderer=tenderer_public_id,
                    supervisor_organisation=supervisor_organisation,
                    region_code="ZS", family=spec.family, subtype=spec.subtype, method=spec.method,
                    budget=spec.budget, lots=[{"title": t, "budget": b} for t, b in spec.lots],
                    evaluation=_showcase_evaluation(spec.subtype),
                    clarification_end_at=deadline - timedelta(days=1), bid_deadline_at=deadline,
                    opening_at=deadline, key_threshold=SHOWCASE_THRESHOLD,
                    key_holder_count=len(DEMO_HOLDERS))
    return body.model_dump()


async def _users(session: AsyncSession, usernames: tuple[str, ...]) -> dict[str, User]:
    rows = (await session.execute(select(User).where(User.username.in_(usernames)))).scalars()
    return {u.username: u for u in rows}


async def ensure_demo_holder_keys(sessions: async_sessionmaker) -> list[str]:
    """Enrol the demo key holders under DEMO_HOLDER_PASSPHRASE unless they hold a key already; returns who
    was enrolled now."""
    enrolled = []
    for username in DEMO_HOLDERS:
        async with sessions() as session, session.begin():
            user = (await _users(session, (username,))).get(username)
            if user is None or await keyholding.current_holder_key(session, user.id) is not None:
                continue
            # scrypt (~1.6 s) runs in a worker thread, off the event loop
            await keyholding.enrol_holder(session, None, user, DEMO_HOLDER_PASSPHRASE, actor=user.public_id)
            enrolled.append(username)
    return enrolled


async def _make_showcase(session: AsyncSession, spec: ShowcaseTender, agent: User, holders: list[User],
                         bidders: list[User], tenderer_public_id: str) -> Tender:
    who = principal_of(agent)
    supervisor = next(h for h in holders if "supervisor" in h.roles)
    supervision = await session.get(Organisation, supervisor.organisation_id) if supervisor.organisation_id else None
    draft = await tenders.create_tender(session, who, showcase_body(
        spec, tenderer_public_id, await db_now(session), supervision.public_id if supervision else None))
    await keyholding.set_key_holders(session, draft, [h.public_id for h in holders], SHOWCASE_THRESHOLD,
                                     actor=agent.public_id)
    # the demo's deadlines are days away, not the statutory 20: it runs with the period minimums off
    tender = await tenders.publish(session, who, draft.code, periods=statutory.RELAXED)
    if spec.register_demo_bidders:
        for lot in await tenders.lots_of(session, tender.id):
            for bidder in bidders:
                await participation.register_for_lot(session, principal_of(bidder), lot.public_id)
    return tender


async def seed_showcase(sessions: async_sessionmaker, console: Console, *, count: int = len(SHOWCASE)
                        ) -> list[str]:
    """Make the first `count` SHOWCASE tenders that do not exist yet; returns the codes of all of them.

    Needs the demo accounts of web/demo.py; without the agent and supervisor it says so and makes nothing.
    """
    specs = SHOWCASE[:max(0, count)]
    if not specs:
        return []
    async with sessions() as session:
        staff = await _users(session, DEMO_HOLDERS)
    if set(staff) != set(DEMO_HOLDERS):
        console.print("showcase tenders skipped: they need the demo accounts " + ", ".join(DEMO_HOLDERS))
        return []
    await ensure_demo_holder_keys(sessions)
    codes = []
    for spec in specs:
        async with sessions() as session, session.begin():
            users = await _users(session, DEMO_HOLDERS + DEMO_BIDDER_USERNAMES)
            agent = users["agent"]
            existing = (await session.execute(select(Tender.code).where(
                Tender.title == spec.title, Tender.created_by_id == agent.id))).scalars().first()
            if existing is not None:  # seeded on an earlier run
                codes.append(existing)
                continue
            tenderer = (await ensure_tenderers(session, random.Random()))["ZS"][0]
            tenderer_public_id = (await session.get(Organisation, tenderer)).public_id
            bidders = [users[u] for u in DEMO_BIDDER_USERNAMES if u in users]
            tender = await _make_showcase(session, spec, agent, [users[h] for h in DEMO_HOLDERS], bidders,
                                          tenderer_public_id)
            codes.append(tender.code)
            log.info("showcase tender %s published, sealed to %s", tender.code, tender.age_recipient)
    console.print(f"showcase tenders open for bids 可投标的演示项目: {', '.join(codes)} · key holders 持钥人 "
                  f"{' + '.join(DEMO_HOLDERS)}, passphrase 解密口令: {DEMO_HOLDER_PASSPHRASE}")
    return codes
