"""The statutory rules of a tender's timeline and of its opening, as pure functions (no I/O).

Each rule names its statute in a comment, in its error's message and in the error's details (`statute`), so an
agent refused at publish knows which article to read. The period minimums (the bidding period, the candidates'
publicity) can be switched off with BIDROOM_STATUTORY_PERIODS=off for tests and the demo only; the rules that
are not periods (the opening at the bid deadline, never before `opening_at`, fewer than three bids never
opened) always hold.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.clock import passed
from core.errors import Conflict, Unprocessable

# 招标投标法 第24条: 依法必须进行招标的项目，自招标文件开始发出之日起至投标人提交投标文件截止之日止，最短不得少于二十日。
BIDDING_PERIOD_STATUTE = "招标投标法 第二十四条"
MIN_BIDDING_DAYS = 20
# 招标投标法 第34条: 开标应当在招标文件确定的提交投标文件截止时间的同一时间公开进行。
OPENING_STATUTE = "招标投标法 第三十四条"
# 招标投标法实施条例 第44条: 投标人少于3个的，不得开标；招标人应当重新招标。
FEWER_THAN_THREE_STATUTE = "招标投标法实施条例 第四十四条"
MIN_BIDS_TO_OPEN = 3
# 招标投标法实施条例 第54条: 依法必须进行招标的项目，招标人应当自收到评标报告之日起3日内公示中标候选人，公示期不得少于3日。
PUBLICITY_STATUTE = "招标投标法实施条例 第五十四条"
MIN_PUBLICITY_DAYS = 3
MAX_PUBLICITY_DAYS = 30
# 招标投标法实施条例 第54条: 投标人或者其他利害关系人对依法必须进行招标的项目的评标结果有异议的，应当在中标候选人公示期间
# 提出。招标人应当自收到异议之日起3日内作出答复；作出答复前，应当暂停招标投标活动。
OBJECTION_STATUTE = "招标投标法实施条例 第五十四条"
OBJECTION_ANSWER_DAYS = 3
# the agent is reminded this long before the answer is due
OBJECTION_REMINDER_BEFORE = timedelta(days=1)

# Methods with a statutory bidding period: open and invitational tendering (招标). Negotiation, inquiry and
# single source are procurement methods with their own (shorter) response periods.
TENDERING_METHODS = frozenset({"open", "invitational"})

FAILURE_FEWER_THAN_THREE_BIDS = "fewer_than_three_bids"            # 第44条: never opened
FAILURE_FEWER_THAN_THREE_VALID = "fewer_than_three_valid_bids"     # opened; too few valid ones remain


@dataclass(frozen=True)
class Periods:
    """Whether the statutory period minimums are enforced (BIDROOM_STATUTORY_PERIODS, on by default)."""

    enforced: bool = True


ENFORCED = Periods(True)
RELAXED = Periods(False)


def _method(method: object) -> str:
    return getattr(method, "value", method)  # a ProcurementMethod or its string


def check_bidding_period(method: object, published_at: datetime, bid_deadline: datetime,
                         periods: Periods = ENFORCED) -> None:
    """招标投标法 第24条: at least 20 days from publication to the bid deadline, for open and invitational tenders."""
    if not periods.enforced or _method(method) not in TENDERING_METHODS:
        return
    earliest = published_at + timedelta(days=MIN_BIDDING_DAYS)
    if bid_deadline < earliest:
        raise Unprocessable(
            f"{BIDDING_PERIOD_STATUTE}: at least {MIN_BIDDING_DAYS} days must pass from publication to the bid "
            f"deadline (自招标文件开始发出之日起至提交投标文件截止之日止，最短不得少于二十日)",
            code="bidding_period_too_short",
            details={"statute": BIDDING_PERIOD_STATUTE, "field": "bid_deadline_at", "min_days": MIN_BIDDING_DAYS,
                     "published_at": published_at.isoformat(), "bid_deadline": bid_deadline.isoformat(),
                     "earliest_bid_deadline": earliest.isoformat()})


def check_opening_at_deadline(bid_deadline: datetime, opening_at: datetime) -> None:
    """招标投标法 第34条: the opening takes place at the bid deadline itself (always enforced)."""
    if opening_at != bid_deadline:
        raise Unprocessable(
            f"{OPENING_STATUTE}: the opening takes place at the bid deadline itself "
            f"(开标应当在提交投标文件截止时间的同一时间公开进行)",
            code="opening_not_at_deadline",
            details={"statute": OPENING_STATUTE, "field": "opening_at", "bid_deadline": bid_deadline.isoformat(),
                     "opening_at": opening_at.isoformat()})


def check_tender_timeline(method: object, published_at: datetime, bid_deadline: datetime, opening_at: datetime,
                          periods: Periods = ENFORCED) -> None:
    """Every statutory rule of a tender's timeline, as checked at publish and at each amendment."""
    check_opening_at_deadline(bid_deadline, opening_at)
    check_bidding_period(method, published_at, bid_deadline, periods)


def check_opening_start(opening_at: datetime | None, now: datetime) -> None:
    """招标投标法 第34条: the opening is not started before `opening_at` (judged by the DB clock: `now`)."""
    if opening_at is None or not passed(opening_at, now):
        raise Conflict(
            f"{OPENING_STATUTE}: the opening starts at the time the tender documents set, not before",
            code="before_opening_time",
            details={"statute": OPENING_STATUTE, "opening_at": opening_at.isoformat() if opening_at else None,
                     "now": now.isoformat()})


def check_publicity_days(days: int, periods: Periods = ENFORCED) -> None:
    """招标投标法实施条例 第54条: the candidates' publicity period is at least 3 days (at most 30 here)."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_PUBLICITY_DAYS:
        raise Unprocessable(f"the publicity period is 1 to {MAX_PUBLICITY_DAYS} days", code="invalid_publicity_period",
                            details={"field": "publicity_days", "max_days": MAX_PUBLICITY_DAYS})
    if periods.enforced and days < MIN_PUBLICITY_DAYS:
        raise Unprocessable(
            f"{PUBLICITY_STATUTE}: the candidates' publicity period is at least {MIN_PUBLICITY_DAYS} days "
            f"(公示期不得少于3日)", code="publicity_period_too_short",
            details={"statute": PUBLICITY_STATUTE, "field": "publicity_days", "min_days": MIN_PUBLICITY_DAYS,
                     "publicity_days": days})


def may_open(live_bids: int, method: object) -> bool:
    """招标投标法实施条例 第44条: a lot with fewer than 3 bids is not opened. Single source has one supplier."""
    if isinstance(live_bids, bool) or not isinstance(live_bids, int) or live_bids < 0:
        raise ValueError("the bid count is a non-negative integer")
    return live_bids >= (1 if _method(method) == "single_source" else MIN_BIDS_TO_OPEN)


def objection_answer_due(filed_at: datetime) -> datetime:
    """招标投标法实施条例 第54条: the answer is due 3 days after the objection is received."""
    if filed_at.tzinfo is None:
        raise ValueError("filed_at must be timezone-aware")
    return filed_at + timedelta(days=OBJECTION_ANSWER_DAYS)


def objection_reminder_at(filed_at: datetime) -> datetime:
    """When the agent is reminded of an unanswered objection: a day before the answer is due."""
    return objection_answer_due(filed_at) - OBJECTION_REMINDER_BEFORE
