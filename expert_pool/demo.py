"""Demo experts: Chinese names, Guangdong cities, employers and specialties, fast enough for 100,000.

Rows go in with PostgreSQL COPY, in batches, behind a rich progress bar. Every expert gets a login (expert001,
expert002, ... numbered like the pool, see `username_pattern`) with the demo password, so whoever a draw picks
can sign in and answer the invitation. Argon2 is slow on purpose, so the demo password is hashed once and that
hash is shared by every demo expert account: acceptable for demo data, never for real accounts.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Sequence

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.identity_models import Organisation, User
from core.identity_rules import uscc_check_char
from core.ids import ALPHABET
from core.passwords import hash_password
from evidence import ledger_service as ledger
from expert_pool.models import Expert, ExpertLeave
from expert_pool.personal import id_card_check_char
from expert_pool.regions import GUANGDONG, GUANGDONG_CITIES
from expert_pool.taxonomy import load_taxonomy

log = logging.getLogger(__name__)

BATCH = 10_000
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁郑谢宋唐许邓冯韩曹曾彭萧蔡潘田董袁于余叶蒋杜苏魏程吕丁"
            "沈任姚卢傅钟姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江薛尹段雷黎史龙陶贺顾毛郝龚邵万钱严赖覃洪武莫孔")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲兰凤洁梅琳素云莲真环雪荣爱妹香月莺媛瑞凡佳"
         "嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕"
         "馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"
         "志建国文辉力永健世广义兴良海山仁波宁贵福生龙元全胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光天达安岩")
# weights roughly by the size of each city's expert pool; the rest of Guangdong shares the remainder. Zhongshan,
# whose centre runs the demo, has a pool of its own large enough for its share of a cross-site committee.
CITY_WEIGHTS = {"440100": 30, "440300": 24, "442000": 14, "440600": 10, "441900": 9, "440400": 6, "440700": 5}
# the employers every demo pool has in these cities, however small the pool: a committee takes one expert per
# employer, so a city's share of a committee needs experts of several employers (the seed case: 2 experts from
# Guangzhou, 3 from Zhongshan, each quota with a backup)
MIN_EMPLOYERS = {"440100": 4, "442000": 5}
# a district code per city for realistic ID card prefixes (Tianhe, Futian, Xiangzhou, Chancheng, Pengjiang)
ID_PREFIX = {"440100": "440106", "440300": "440304", "440400": "440402", "440600": "440604", "440700": "440703"}
EMPLOYER_PATTERNS = ("{city}建筑设计研究院有限公司", "{city}市政工程设计院", "{city}{word}工程咨询有限公司",
                     "{city}{word}造价师事务所有限公司", "{city}{word}信息技术有限公司", "{city}{word}大学",
                     "{city}{word}职业技术学院", "{city}{word}会计师事务所（特殊普通合伙）", "{city}{word}交通规划设计院",
                     "{city}{word}水利水电勘测设计院", "{city}{word}医疗设备有限公司", "{city}{word}检测中心")
WORDS = "华南粤海珠江岭南南方广信中天宏达恒泰新世纪金辉卓越建研科创正信诚安广源粤通"
TECH_TITLES = ("高级工程师", "正高级工程师", "教授级高级工程师", "教授", "副教授", "工程师")
ECON_TITLES = ("高级经济师", "高级会计师", "注册造价工程师", "正高级会计师", "经济师")
EXPERT_COLUMNS = ("public_id", "user_id", "name", "id_card_no", "phone", "province_code", "city_code",
                  "employer_id", "category", "title", "specialties", "status", "status_reason")


def _cities(rng: random.Random, n: int) -> list[str]:
    others = [c for c in GUANGDONG_CITIES if c not in CITY_WEIGHTS]
    weights = {**CITY_WEIGHTS, **{c: 8 / len(others) for c in others}}
    return rng.choices(list(weights), weights=list(weights.values()), k=n)


def unique_ids(rng: random.Random, prefix: str, n: int, taken: set[str] = frozenset()) -> list[str]:
    """n distinct public ids like E-7Q4M2K (at 100,000 a few random collisions are otherwise certain)."""
    out: list[str] = []
    seen = set(taken)
    while len(out) < n:
        candidate = prefix + "-" + "".join(rng.choice(ALPHABET) for _ in range(6))
        if candidate not in seen:
            seen.add(candidate)
            out.append(candidate)
    return out


def id_card(i: int, city: str) -> str:
    """A valid, distinct ID card number for the i-th demo expert (born 1958–1990)."""
    born = date(1958, 1, 1) + timedelta(days=i % 12_000)
    first17 = f"{ID_PREFIX.get(city, city)}{born:%Y%m%d}{(i // 12_000) % 1000:03d}"
    return first17 + id_card_check_char(first17)


def employer_code(i: int, city: str) -> str:
    first17 = f"91{city}EX{i:07d}"
    return first17 + uscc_check_char(first17)


def username_width(n: int) -> int:
    """Digits in the demo expert usernames for a pool of n: expert001 ... expert200, expert000001 at 100,000."""
    return max(3, len(str(n)))


def demo_username(i: int, n: int) -> str:
    """The login of the i-th (0-based) demo expert of a pool of n."""
    return f"expert{i + 1:0{username_width(n)}d}"


def username_pattern(n: int) -> str:
    """How the demo expert logins are named, for the console: 'expert001 … expert200'."""
    return f"{demo_username(0, n)} … {demo_username(n - 1, n)}" if n > 0 else "-"


@dataclass(frozen=True)
class DemoPool:
    """What was seeded, for the console summary and the benchmark."""

    experts: int
    employers: int
    accounts: int  # experts with a login
    username_pattern: str


async def _copy(session: AsyncSession, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(table, records=rows, columns=list(columns))


async def _demo_accounts(session: AsyncSession, rng: random.Random, n: int, password: str) -> dict[int, int]:
    """A login for each of the n demo experts (skipping usernames already taken); expert index -> user row id."""
    password_hash = await hash_password(password)  # once: Argon2 takes tens of milliseconds per hash
    wanted = {demo_username(i, n): i for i in range(n)}
    taken = set((await session.execute(select(User.username).where(User.username.like("expert%")))).scalars())
    free = [name for name in wanted if name not in taken]
    user_ids = unique_ids(rng, "U", len(free), set((await session.execute(select(User.public_id))).scalars()))
    for start in range(0, len(free), BATCH):
        await _copy(session, "app_user", ("public_id", "username", "display_name", "password_hash", "roles"), [
            (upid, name, f"评标专家 {name}", password_hash, ["expert"])
            for upid, name in zip(user_ids[start:start + BATCH], free[start:start + BATCH])])
    made = set(free)
    rows = await session.execute(select(User.username, User.id).where(User.username.like("expert%")))
    return {wanted[name]: pk for name, pk in rows.all() if name in made}


async def seed_experts(session: AsyncSession, n: int, *, seed: int = 2026, progress: Progress | None = None,
                       password: str | None = None) -> DemoPool:
    """Seed n experts with employers (and, given the demo password, a login each) in the caller's transaction."""
    rng = random.Random(seed)
    taxonomy = load_taxonomy()
    roots = {root: list(taxonomy.leaves(root)) for root in taxonomy.roots()}
    task = progress.add_task("experts 专家", total=n) if progress is not None else None
    cities = _cities(rng, n)

    employers_n = max(24, n // 20)
    taken_orgs = set((await session.execute(select(Organisation.public_id))).scalars())
    org_ids = unique_ids(rng, "O", employers_n, taken_orgs)
    org_cities = _cities(rng, employers_n)
    for city, least in MIN_EMPLOYERS.items():
        for i in range(least - org_cities.count(city)):
            # taken from the cities with the most employers, so the pool's other cities keep theirs
            richest = max(set(org_cities) - set(MIN_EMPLOYERS), key=org_cities.count)
            org_cities[org_cities.index(richest)] = city
    await _copy(session, "organisation", ("public_id", "name", "social_credit_code", "kind", "region_code"), [
        (org_ids[i], rng.choice(EMPLOYER_PATTERNS).format(city=GUANGDONG_CITIES[c][0][:-1],
                                                          word=rng.choice(WORDS) + rng.choice(WORDS)),
         employer_code(i, c), "employer", c)
        for i, c in enumerate(org_cities)])
    employer_pk = dict((await session.execute(select(Organisation.public_id, Organisation.id).where(
        Organisation.public_id.in_(org_ids)))).all())
    employers_by_city: dict[str, list[int]] = {}
    for pid, c in zip(org_ids, org_cities):
        employers_by_city.setdefault(c, []).append(employer_pk[pid])
    all_employers = list(employer_pk.values())

    user_pk: dict[int, int] = {}
    if password is not None:
        user_pk = await _demo_accounts(session, rng, n, password)

    expert_ids = unique_ids(rng, "E", n, set((await session.execute(select(Expert.public_id))).scalars()))
    for start in range(0, n, BATCH):
        rows = []
        for i in range(start, min(n, start + BATCH)):
            city = cities[i]
            root = rng.choices(("A", "B", "C", "D", "E"), weights=(40, 15, 20, 12, 13))[0]
            leaves = rng.sample(roots[root], k=rng.choice((1, 1, 2, 2, 3)))
            economic = root == "C"
            local = employers_by_city.get(city)
            employer = rng.choice(local) if local and rng.random() < 0.8 else rng.choice(all_employers)
            suspended = rng.random() < 0.005
            rows.append((expert_ids[i], user_pk.get(i), rng.choice(SURNAMES) + "".join(
                rng.choices(GIVEN, k=rng.choice((1, 2, 2)))), id_card(i, city), f"13{i:09d}", GUANGDONG, city,
                employer, "economic" if economic else "technical",
                rng.choice(ECON_TITLES if economic else TECH_TITLES), leaves,
                "suspended" if suspended else "active", "信用评价不合格 poor ratings" if suspended else None))
        await _copy(session, "expert", EXPERT_COLUMNS, rows)
        if progress is not None and task is not None:
            progress.advance(task, len(rows))

    # a little life: some experts on leave in the coming weeks
    now = datetime.now(timezone.utc)
    away = rng.sample(range(n), k=n // 50)
    if away:
        pks = dict((await session.execute(select(Expert.public_id, Expert.id).where(
            Expert.public_id.in_([expert_ids[i] for i in away])))).all())
        leave_rows = []
        for i in away:
            starts = now + timedelta(days=rng.randint(0, 45), hours=rng.randint(0, 23))
            leave_rows.append({"expert_id": pks[expert_ids[i]], "starts_at": starts,
                               "ends_at": starts + timedelta(days=rng.randint(1, 14)), "reason": "出差 travel"})
        await session.execute(insert(ExpertLeave), leave_rows)
    # one ledger entry for the whole seed: a row-by-row trail of demo data would only slow the demo down
    pattern = username_pattern(n) if user_pk else "-"
    await ledger.append(session, actor=ledger.SYSTEM, action="expert.import", entity="expert_pool:demo",
                        payload={"source": "demo", "experts": n, "employers": employers_n, "accounts": len(user_pk),
                                 "usernames": pattern})
    return DemoPool(experts=n, employers=employers_n, accounts=len(user_pk), username_pattern=pattern)


async def seed_demo(sessions: async_sessionmaker, console: Console, progress: Progress,
                    options: dict[str, Any]) -> None:
    """`bidroom demo seed --experts N`: N demo experts unless the pool already has experts; each gets a login
    with options["password"] (the demo's one password, given by web.demo) when there is one."""
    n = int(options.get("experts", 200))
    password = options.get("password")
    if n <= 0:
        return
    async with sessions() as session, session.begin():
        if (await session.execute(select(func.count()).select_from(Expert))).scalar_one():
            console.print("expert pool already seeded")
            return
        pool = await seed_experts(session, n, progress=progress, password=password)
    table = Table(title=f"expert pool · 专家库: {pool.experts} experts, {pool.employers} employers")
    table.add_column("expert logins 专家账号")
    table.add_column("password 密码")
    table.add_row(f"{pool.username_pattern} ({pool.accounts} experts, every one of the pool)", password or "-")
    console.print(table)
