"""Tender lifecycle: states, procurement methods, the timeline and its amendment rule, and 流标. Pure, no I/O.

State machine (招标项目状态)::

    draft ─► published ─► closed ─► opening ─► opened ─► evaluating ─► candidates_published ─► awarded ─► complete
      │          │           │         │          │           │                 │   ▲
      └──────────┴───────────┴─────────┴──────────┴───────────┴─────────────────┘   └─ re-evaluation (back to
                                   ─► cancelled (终止)                                  evaluating) after an
                                                                                       upheld complaint
    closed / opening / opened / evaluating ─► failed (流标)

Choices, and why:
- cancelled (终止招标) is reachable from every state before the award notice. Once the award notice
  (中标通知书) is out it binds both sides (招标投标法 第45条), so awarded and complete cannot be cancelled;
  that is a contract matter, outside this machine.
- failed (流标) is reachable from closed as well as opening/opened: with fewer than 3 bids at the deadline the
  bids are not opened at all (招标投标法实施条例 第44条). From evaluating it covers "too few compliant bids"
  after the committee rejects some (否决投标后有效投标不足3个).
- candidates_published may go back to evaluating: a complaint (异议/投诉) upheld during the publicity period
  sends the bids back to the committee for re-evaluation (重新评审).
- complete, cancelled and failed are terminal. A failed tender is re-tendered as a new tender with a new code.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Mapping

from core.errors import Conflict, Unprocessable
from trading import statutory

log = logging.getLogger(__name__)


class TenderStatus(StrEnum):
    """Local tender states; the values are stored and shown in OCDS tender.statusDetails."""

    DRAFT = "draft"                                  # 草稿
    PUBLISHED = "published"                          # 已发布（招标公告）
    CLOSED = "closed"                                # 投标截止
    OPENING = "opening"                              # 开标中（解密）
    OPENED = "opened"                                # 已开标
    EVALUATING = "evaluating"                        # 评标中
    CANDIDATES_PUBLISHED = "candidates_published"    # 中标候选人公示
    AWARDED = "awarded"                              # 已发中标通知书
    COMPLETE = "complete"                            # 完成
    CANCELLED = "cancelled"                          # 终止
    FAILED = "failed"                                # 流标


class ProcurementMethod(StrEnum):
    """Procurement methods (采购方式)."""

    OPEN = "open"                                        # 公开招标
    INVITATIONAL = "invitational"                        # 邀请招标
    COMPETITIVE_NEGOTIATION = "competitive_negotiation"  # 竞争性谈判
    INQUIRY = "inquiry"                                  # 询价
    SINGLE_SOURCE = "single_source"                      # 单一来源采购


S = TenderStatus

TRANSITIONS: Mapping[TenderStatus, frozenset[TenderStatus]] = MappingProxyType({
    S.DRAFT: frozenset({S.PUBLISHED, S.CANCELLED}),
    S.PUBLISHED: frozenset({S.CLOSED, S.CANCELLED}),
    S.CLOSED: frozenset({S.OPENING, S.FAILED, S.CANCELLED}),
    S.OPENING: frozenset({S.OPENED, S.FAILED, S.CANCELLED}),
    S.OPENED: frozenset({S.EVALUATING, S.FAILED, S.CANCELLED}),
    S.EVALUATING: frozenset({S.CANDIDATES_PUBLISHED, S.FAILED, S.CANCELLED}),
    S.CANDIDATES_PUBLISHED: frozenset({S.AWARDED, S.EVALUATING, S.CANCELLED}),
    S.AWARDED: frozenset({S.COMPLETE}),
    S.COMPLETE: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
})
TERMINAL_STATES = frozenset(state for state, targets in TRANSITIONS.items() if not targets)
# Bids, their count and the opening record become public only from the opening on (开标前不得泄露投标人).
OPENED_STATES = frozenset({S.OPENED, S.EVALUATING, S.CANDIDATES_PUBLISHED, S.AWARDED, S.COMPLETE})


def _order(states) -> list[str]:
    """States as plain strings in lifecycle order, for stable error details."""
    return [s.value for s in TenderStatus if s in states]


def as_status(value: str | TenderStatus) -> TenderStatus:
    """Parse a state name, refusing unknown ones with Unprocessable(unknown_status)."""
    try:
        return TenderStatus(value)
    except ValueError as err:
        raise Unprocessable(f"unknown tender status {value!r}", code="unknown_status",
                            details={"status": value, "allowed": _order(TenderStatus)}) from err


def as_method(value: str | ProcurementMethod) -> ProcurementMethod:
    """Parse a procurement method, refusing unknown ones with Unprocessable(unknown_method)."""
    try:
        return ProcurementMethod(value)
    except ValueError as err:
        raise Unprocessable(f"unknown procurement method {value!r}", code="unknown_method",
                            details={"method": value, "allowed": [m.value for m in ProcurementMethod]}) from err


def allowed_targets(current: str | TenderStatus) -> list[TenderStatus]:
    """The states a tender may move to from `current`, in lifecycle order."""
    state = as_status(current)
    return [s for s in TenderStatus if s in TRANSITIONS[state]]


def transition(current: str | TenderStatus, target: str | TenderStatus) -> TenderStatus:
    """Return `target` if the move is allowed, else Conflict(illegal_transition) naming current and allowed."""
    state, goal = as_status(current), as_status(target)
    if goal not in TRANSITIONS[state]:
        raise Conflict(f"a tender cannot go from {state.value} to {goal.value}", code="illegal_transition",
                       details={"current": state.value, "target": goal.value,
                                "allowed": _order(TRANSITIONS[state])})
    return goal


# 流标: fewer than 3 valid bids fails the tender. Single-source procurement is exempt (it has one supplier by
# definition), though it still fails with no valid response at all.
MIN_VALID_BIDS = 3


def tender_fails(valid_bid_count: int, method: str | ProcurementMethod) -> bool:
    """True when too few valid bids remain for the tender to go on (流标)."""
    if isinstance(valid_bid_count, bool) or not isinstance(valid_bid_count, int) or valid_bid_count < 0:
        raise Unprocessable("valid bid count must be a non-negative integer", code="invalid_bid_count",
                            details={"valid_bid_count": valid_bid_count})
    if as_method(method) is ProcurementMethod.SINGLE_SOURCE:
        return valid_bid_count < 1
    return valid_bid_count < MIN_VALID_BIDS


# 澄清或修改 notice periods, in calendar days before the bid deadline.
# - open and invitational tendering: 15 days (招标投标法 第23条; 政府采购法实施条例 第31条).
# - competitive negotiation and inquiry: the rule is 3 working days before the response deadline
#   (财政部令第74号). We count calendar days, and 3 working days can span 5 calendar days over a weekend,
#   so 5 is the smallest calendar figure that never falls short of the rule outside public holidays.
# - single source: one supplier negotiates directly; there is no competition for a notice to protect.
AMENDMENT_NOTICE_DAYS: Mapping[ProcurementMethod, int] = MappingProxyType({
    ProcurementMethod.OPEN: 15,
    ProcurementMethod.INVITATIONAL: 15,
    ProcurementMethod.COMPETITIVE_NEGOTIATION: 5,
    ProcurementMethod.INQUIRY: 5,
    ProcurementMethod.SINGLE_SOURCE: 0,
})


def _require_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime):
        raise Unprocessable(f"{name} must be a datetime", code="invalid_timeline", details={"field": name})
    if value.tzinfo is None or value.utcoffset() is None:
        raise Unprocessable(f"{name} must carry a timezone", code="naive_datetime", details={"field": name})


@dataclass(frozen=True)
class Timeline:
    """Key times of a tender: announcement, end of clarification questions, bid deadline, opening (开标)."""

    published_at: datetime
    clarification_end: datetime
    bid_deadline: datetime
    opening_at: datetime


def validate_timeline(timeline: Timeline, method: str | ProcurementMethod | None = None,
                      periods: statutory.Periods | None = None) -> Timeline:
    """Check published < clarification_end <= bid_deadline <= opening_at, all timezone-aware.

    With `periods` (at publish and at each amendment) the statutory rules apply too (trading.statutory): the
    opening at the bid deadline (招标投标法 第34条) and, for open and invitational tenders, 20 days from
    publication to the bid deadline (第24条) unless the period minimums are switched off.
    """
    for name in ("published_at", "clarification_end", "bid_deadline", "opening_at"):
        _require_aware(name, getattr(timeline, name))
    if not timeline.published_at < timeline.clarification_end:
        raise Unprocessable("the clarification period must end after publication", code="invalid_timeline",
                            details={"field": "clarification_end", "rule": "published_at < clarification_end"})
    if not timeline.clarification_end <= timeline.bid_deadline:
        raise Unprocessable("clarifications must close no later than the bid deadline", code="invalid_timeline",
                            details={"field": "bid_deadline", "rule": "clarification_end <= bid_deadline"})
    if not timeline.bid_deadline <= timeline.opening_at:
        raise Unprocessable("the opening cannot come before the bid deadline", code="invalid_timeline",
                            details={"field": "opening_at", "rule": "bid_deadline <= opening_at"})
    if periods is not None:
        statutory.check_tender_timeline(as_method(method), timeline.published_at, timeline.bid_deadline,
                                        timeline.opening_at, periods)
    return timeline


def amendment_notice_days(method: str | ProcurementMethod,
                          notice_days: Mapping[ProcurementMethod, int] | None = None) -> int:
    """The minimum days between a change to the tender documents and the bid deadline for this method."""
    table = AMENDMENT_NOTICE_DAYS if notice_days is None else notice_days
    days = table[as_method(method)]
    if days < 0:
        raise ValueError("notice days cannot be negative")
    return days


def apply_amendment(timeline: Timeline, amended_at: datetime, method: str | ProcurementMethod, *,
                    notice_days: Mapping[ProcurementMethod, int] | None = None) -> Timeline:
    """The timeline after a change to the tender documents published at `amended_at`.

    If fewer than N days (per method) remain before the deadline, the deadline moves to amended_at + N days and
    the opening moves by the same amount. The clarification end stays where the agent put it.
    """
    validate_timeline(timeline)
    _require_aware("amended_at", amended_at)
    if amended_at < timeline.published_at:
        raise Unprocessable("an amendment cannot predate the tender's publication", code="invalid_timeline",
                            details={"field": "amended_at", "rule": "published_at <= amended_at"})
    if amended_at >= timeline.bid_deadline:
        raise Conflict("the tender documents cannot change after the bid deadline",
                       code="amendment_after_deadline",
                       details={"bid_deadline": timeline.bid_deadline.isoformat(),
                                "amended_at": amended_at.isoformat()})
    earliest_deadline = amended_at + timedelta(days=amendment_notice_days(method, notice_days))
    if timeline.bid_deadline >= earliest_deadline:
        return timeline
    delta = earliest_deadline - timeline.bid_deadline
    log.debug("amendment at %s extends the bid deadline by %s", amended_at.isoformat(), delta)
    return replace(timeline, bid_deadline=earliest_deadline, opening_at=timeline.opening_at + delta)
