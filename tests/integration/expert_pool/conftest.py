"""Building blocks for expert pool tests: tenders with lots (through the trading services), employers, experts with
accounts, signed-in actors."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from core import identity_service
from expert_pool import service as expert_service
from expert_pool.demo import id_card
from tests.helpers import PASSWORD, Actor, auth, login, social_credit_code, staff
from trading import participation
from trading.access import principal_of

_n = itertools.count(1)
# the tenders of these tests name one supervising organisation (行政监督部门); the `supervisor` fixture belongs to it
SUPERVISING_ORG = "中山市公共资源交易监督管理办公室"


@dataclass
class TenderInfo:
    tender_id: int
    code: str
    lot_id: str
    lot_pk: int
    tenderer: str                      # organisation public id
    bidders: list[str] = field(default_factory=list)


async def organisation(sessions, name: str | None = None) -> str:
    """A new organisation; returns its public id."""
    async with sessions() as session, session.begin():
        org = await identity_service.create_organisation(
            session, actor="system", name=name or f"测试单位{next(_n)}有限公司", social_credit_code=social_credit_code())
        return org.public_id


async def supervising_org(sessions) -> str:
    """The supervising organisation of these tests' tenders (made on first use); returns its public id."""
    async with sessions() as session:
        found = (await session.execute(text("SELECT public_id FROM organisation WHERE name = :n"),
                                       {"n": SUPERVISING_ORG})).scalar_one_or_none()
    return found or await organisation(sessions, SUPERVISING_ORG)


async def tender_with_lot(sessions, agent: Actor, *, family: str = "FJSZ", budget: str = "5000000.00",
                          method: str = "open", status: str = "published", bidders: int = 0,
                          bid_deadline_days: float = 10, supervisor_org: str | None = None) -> TenderInfo:
    """A tender with one lot reached through the trading services (tests/integration/trading_bids/conftest.py
    `service_tender`; `status` "published", "draft" or "cancelled"), supervised by `supervisor_org` (default
    SUPERVISING_ORG), its bid deadline `bid_deadline_days` from now, with `bidders` organisations registered for
    its lot."""
    from tests.integration.trading_bids.conftest import service_tender
    supervisors = supervisor_org or await supervising_org(sessions)
    tenderer = await organisation(sessions, f"中山市第{next(_n)}人民医院")
    bidder_orgs = [await organisation(sessions, f"投标人{next(_n)}建设有限公司") for _ in range(bidders)]
    made = await service_tender(sessions, agent, tenderer=tenderer, supervisor_org=supervisors, state=status,
                                title=f"中山市第{next(_n)}号项目", family=family,
                                subtype=f"{family}-SG" if family == "FJSZ" else f"{family}-HW", method=method,
                                budget=budget, bid_deadline_days=bid_deadline_days)
    for org in bidder_orgs:  # each registers through the trading service, as a bidder of the organisation
        async with sessions() as session, session.begin():
            user, _ = await identity_service.create_user(
                session, actor=agent.public_id, username=f"reg{next(_n)}", password=PASSWORD,
                display_name="投标经办人", roles=["bidder"], organisation_public_id=org)
            await participation.register_for_lot(session, principal_of(user), made.lot_id)
    return TenderInfo(made.tender_id, made.code, made.lot_id, made.lot_pk, tenderer, bidder_orgs)


@dataclass
class PoolExpert:
    expert_id: str
    username: str | None
    employer: str | None


async def add_expert(sessions, *, specialty: str = "A0101", city: str = "440100", employer: str | None = None,
                     account: bool = False, name: str | None = None) -> PoolExpert:
    """An expert registered through the service (as an admin would), optionally with a login account."""
    i = next(_n)
    username = None
    async with sessions() as session, session.begin():
        if account:
            username = f"expert_{i}"
            await identity_service.create_user(session, actor="system", username=username, password=PASSWORD,
                                               display_name=f"专家 {i}", roles=["expert"])
        expert = await expert_service.create_expert(session, actor="system", data={
            "name": name or f"专家{i:04d}", "id_card_no": id_card(i * 7919, city), "phone": f"139{i:08d}",
            "province_code": city[:2] + "0000", "city_code": city, "category": "economic" if specialty[0] == "C"
            else "technical", "title": "高级工程师", "specialties": [specialty], "employer_id": employer,
            "username": username})
        return PoolExpert(expert.public_id, username, employer)


async def employed_experts(sessions, n: int, **kwargs) -> list[PoolExpert]:
    """n experts, each with an employer of their own."""
    return [await add_expert(sessions, employer=await organisation(sessions), **kwargs) for _ in range(n)]


async def sign_in(client, username: str) -> Actor:
    tokens = await login(client, username)
    async with client.get("/api/v1/me", headers=auth(tokens)) as resp:
        me = await resp.json()
    return Actor(auth(tokens), me["public_id"], username, tokens)


def session_time(days: int = 3) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0).isoformat()


@pytest.fixture
async def agent(sessions, client) -> Actor:
    """An agent of a tendering agency (招标代理机构): with a supervisor of SUPERVISING_ORG, its tenders' key
    holders come from two organisations, as publishing requires."""
    return await staff(sessions, client, "agent", organisation_public_id=await organisation(
        sessions, f"中山市第{next(_n)}招标代理有限公司"))


@pytest.fixture
async def supervisor(sessions, client) -> Actor:
    """A supervisor of the supervising organisation of the tenders made by `tender_with_lot`."""
    return await staff(sessions, client, "supervisor", organisation_public_id=await supervising_org(sessions))


@pytest.fixture
async def other_supervisor(sessions, client) -> Actor:
    """A supervisor of another organisation: a stranger to these tenders."""
    return await staff(sessions, client, "supervisor", organisation_public_id=await organisation(sessions))


@pytest.fixture
async def admin(sessions, client) -> Actor:
    return await staff(sessions, client, "admin")


def pdf_lines(pdf: bytes) -> list[str]:
    """The text lines of a record PDF."""
    import io

    from pypdf import PdfReader
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).splitlines()


def pdf_exclusion_counts(lines: list[str]) -> dict[str, int]:
    """The avoidance table of a draw record PDF as text: reason label (English part) -> number of experts.

    Cells may wrap over several lines, so the section is read as one string between its table header and the
    next section heading.
    """
    import re

    from expert_pool.records import REASON_LABELS
    section = " ".join(lines[lines.index("Experts") + 1:lines.index("随机数")])
    section = re.sub(r"\s+", " ", section)
    counts = {}
    for zh, en in REASON_LABELS.values():
        found = re.search(re.escape(zh) + r" " + r"\s?".join(map(re.escape, en.split(" "))) + r" (\d+)", section)
        if found:
            counts[en] = int(found.group(1))
    return counts


async def ledger_size(raw_conn) -> int:
    return await raw_conn.fetchval("SELECT count(*) FROM audit_entry")
