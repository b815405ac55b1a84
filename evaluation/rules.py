"""Evaluation rules that need no database: venue standing, booking time ranges and the evaluation session's
state machine with its fault timers. Pure, no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Mapping, Sequence

from core.errors import Conflict, Unprocessable

VENUE_STATUSES = ("active", "retired")
BOOKING_STATUSES = ("confirmed", "cancelled")
VENUE_ROLES = ("main", "sub")  # 主场, 副场

# An evaluation of a large lot may run over several days (评标时间 set by the tenderer, 实施条例 第48条 allows
# it to be extended), never for more than a month in one room.
MAX_BOOKING = timedelta(days=31)


def check_booking_range(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """A booking covers [starts_at, ends_at): a non-empty range, not starting before `now` (the database clock),
    at most MAX_BOOKING long. Refuses with 422."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Unprocessable("booking times must carry a timezone", code="invalid_time_range")
    if ends_at <= starts_at:
        raise Unprocessable("a booking must end after it starts", code="invalid_time_range",
                            details={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()})
    if starts_at < now:
        raise Unprocessable("a booking cannot start in the past", code="booking_in_past",
                            details={"starts_at": starts_at.isoformat(), "now": now.isoformat()})
    if ends_at - starts_at > MAX_BOOKING:
        raise Unprocessable(f"a booking lasts at most {MAX_BOOKING.days} days", code="booking_too_long",
                            details={"max_days": MAX_BOOKING.days})


def check_cancellable(status: str, ends_at: datetime, now: datetime) -> None:
    """Only a confirmed booking that has not ended yet can be cancelled; refuses with 409."""
    if status != "confirmed":
        raise Conflict("the booking is already cancelled", code="booking_not_active", details={"status": status})
    if ends_at <= now:
        raise Conflict("the booking is over; it stays on record", code="booking_over",
                       details={"ends_at": ends_at.isoformat()})


def check_active(kind: str, public_id: str, status: str) -> None:
    """Refuse with 409 `<kind>_retired` to change or use a retired site, room or place."""
    if status != "active":
        raise Conflict(f"the {kind} {public_id} is retired", code=f"{kind}_retired", details={f"{kind}_id": public_id})


# ---------------------------------------------------------------------------------------------------------
# The evaluation session (评标会议) state machine.
#
#   scheduled ─► check_in ─► in_progress ─► scoring_closed ─► signing ─► closed
#       │            │            │               │              │
#       └────────────┴────────────┴───────────────┴──────────────┴─► suspended ─► (back where it was) | aborted
#       └────────────┴────────────┴───────────────┴──────────────┴─► aborted
#
# - suspended (暂停): a supervisor's decision or a fault at a venue. It resumes exactly where it stopped, so a
#   suspension can never skip check-in or scoring.
# - aborted (终止) is terminal: the materials are sealed and the lot needs a new committee (PRODUCT.md "Remote
#   cross-site sessions"; a member who cannot go on is replaced, 招标投标法实施条例 第48条, but a session that
#   cannot go on at all starts over with a new one).
# - closed is terminal: the report is signed and sealed.

class SessionStatus(StrEnum):
    """Evaluation session states; the values are stored."""

    SCHEDULED = "scheduled"            # 已安排
    CHECK_IN = "check_in"              # 签到
    IN_PROGRESS = "in_progress"        # 评标中
    SCORING_CLOSED = "scoring_closed"  # 评分结束
    SIGNING = "signing"                # 报告签署
    CLOSED = "closed"                  # 已结束
    SUSPENDED = "suspended"            # 暂停
    ABORTED = "aborted"                # 终止


SS = SessionStatus
FORWARD: Mapping[SessionStatus, SessionStatus] = MappingProxyType({
    SS.SCHEDULED: SS.CHECK_IN, SS.CHECK_IN: SS.IN_PROGRESS, SS.IN_PROGRESS: SS.SCORING_CLOSED,
    SS.SCORING_CLOSED: SS.SIGNING, SS.SIGNING: SS.CLOSED,
})
# the states a session can be suspended from and resumed to: everything between scheduling and the seal
RUNNING_STATES = frozenset(FORWARD)
TERMINAL_SESSION_STATES = frozenset({SS.CLOSED, SS.ABORTED})
SESSION_STATUSES = tuple(s.value for s in SessionStatus)
# before the evaluation starts a fault is handled as "before the start" (2 h), afterwards as "during" (4 h)
BEFORE_START = frozenset({SS.SCHEDULED, SS.CHECK_IN})
FAULT_WAIT_BEFORE_START = timedelta(hours=2)
FAULT_WAIT_DURING = timedelta(hours=4)


def as_session_status(value: str | SessionStatus) -> SessionStatus:
    """Parse a state name, refusing unknown ones with 422 unknown_status."""
    try:
        return SessionStatus(value)
    except ValueError as err:
        raise Unprocessable(f"unknown session status {value!r}", code="unknown_status",
                            details={"status": value, "allowed": list(SESSION_STATUSES)}) from err


def session_targets(current: str | SessionStatus,
                    suspended_from: str | SessionStatus | None = None) -> list[SessionStatus]:
    """The states a session may move to from `current` (from suspended: back where it was, or aborted)."""
    state = as_session_status(current)
    if state in TERMINAL_SESSION_STATES:
        return []
    if state is SS.SUSPENDED:
        if suspended_from is None or as_session_status(suspended_from) not in RUNNING_STATES:
            return [SS.ABORTED]
        return [as_session_status(suspended_from), SS.ABORTED]
    return [FORWARD[state], SS.SUSPENDED, SS.ABORTED]


def re_evaluation_transition(current: str | SessionStatus) -> SessionStatus:
    """closed → in_progress, the one way back out of a closed session: an objection upheld during the
    candidates' publicity sends the lot back to the committee that evaluated it (招标投标法实施条例 第54条).
    Anything but a closed session is refused with 409 illegal_transition."""
    state = as_session_status(current)
    if state is not SS.CLOSED:
        raise Conflict("only a closed session is reopened for re-evaluation", code="illegal_transition",
                       details={"current": state.value, "target": SS.IN_PROGRESS.value})
    return SS.IN_PROGRESS


def session_transition(current: str | SessionStatus, target: str | SessionStatus, *,
                       suspended_from: str | SessionStatus | None = None) -> SessionStatus:
    """Return `target` if the session may move there, else 409 illegal_transition naming what is allowed."""
    state, goal = as_session_status(current), as_session_status(target)
    allowed = session_targets(state, suspended_from)
    if goal not in allowed:
        raise Conflict(f"an evaluation session cannot go from {state.value} to {goal.value}",
                       code="illegal_transition",
                       details={"current": state.value, "target": goal.value, "allowed": [s.value for s in allowed]})
    return goal


def fault_outcome(suspended_from: str | SessionStatus, unresolved_for: timedelta) -> str | None:
    """What an unresolved venue fault leads to (PRODUCT.md "Remote cross-site sessions"):

    - before the start, after 2 h: "tenderer_decides" whether the session goes on;
    - during the evaluation, after 4 h: "abort" — the materials are sealed and a new committee is formed;
    - otherwise None: keep waiting for the fault to be fixed.
    """
    state = as_session_status(suspended_from)
    if state not in RUNNING_STATES:
        raise Unprocessable(f"a session is not suspended from {state.value}", code="invalid_suspension",
                            details={"suspended_from": state.value})
    if state in BEFORE_START:
        return "tenderer_decides" if unresolved_for >= FAULT_WAIT_BEFORE_START else None
    return "abort" if unresolved_for >= FAULT_WAIT_DURING else None



# ---------------------------------------------------------------------------------------------------------
# A session's venues.

MAX_SUB_VENUES = 10


@dataclass(frozen=True)
class VenueSlot:
    """A booking offered as a session's venue: which site, and when."""

    booking_id: str
    site_id: str
    starts_at: datetime
    ends_at: datetime


def check_session_venues(main: VenueSlot, subs: Sequence[VenueSlot]) -> None:
    """A remote cross-site session (远程异地评标) sits at one main venue (主场) and sub-venues (副场) at other
    sites, all at once: each venue is a different site, and each sub-venue's booking covers the main venue's
    whole time. Refuses with 422."""
    ids = [main.booking_id, *(s.booking_id for s in subs)]
    if len(set(ids)) != len(ids):
        raise Unprocessable("a booking serves as one venue only", code="venue_booking_repeated",
                            details={"bookings": ids})
    if len(subs) > MAX_SUB_VENUES:
        raise Unprocessable(f"at most {MAX_SUB_VENUES} sub-venues", code="too_many_sub_venues",
                            details={"max": MAX_SUB_VENUES})
    sites = [main.site_id, *(s.site_id for s in subs)]
    repeated = sorted({site for site in sites if sites.count(site) > 1})
    if repeated:
        raise Unprocessable("the main venue and every sub-venue are at different sites", code="venue_sites_repeated",
                            details={"sites": repeated})
    for sub in subs:
        if sub.starts_at > main.starts_at or sub.ends_at < main.ends_at:
            raise Unprocessable("a sub-venue must be booked for the main venue's whole time",
                                code="sub_venue_time_mismatch",
                                details={"booking_id": sub.booking_id, "starts_at": sub.starts_at.isoformat(),
                                         "ends_at": sub.ends_at.isoformat(),
                                         "main_starts_at": main.starts_at.isoformat(),
                                         "main_ends_at": main.ends_at.isoformat()})


# ---------------------------------------------------------------------------------------------------------
# The committee of a session.

MEMBER_KINDS = ("expert", "representative")       # 评标专家, 招标人代表
MEMBER_STATUSES = ("seated", "checked_in", "withdrawn")
FAULT_OUTCOMES = ("tenderer_decides",)


def check_representatives(*, experts: int, representatives: int, planned: int) -> None:
    """Tenderer representatives (招标人代表) on a committee: no more than the draw planned for, and experts at
    least two thirds of the whole committee (招标投标法 第37条: 技术、经济等方面的专家不得少于成员总数的三分之二).
    Refuses with 422."""
    if representatives > planned:
        raise Unprocessable(f"the draw planned {planned} tenderer representatives, not {representatives}",
                            code="representatives_exceed_draw",
                            details={"planned": planned, "representatives": representatives})
    if 3 * experts < 2 * (experts + representatives):
        raise Unprocessable("experts must be at least two thirds of the committee (招标投标法 第37条)",
                            code="experts_below_two_thirds",
                            details={"experts": experts, "representatives": representatives,
                                     "statute": "招标投标法 第37条"})


def check_committee_complete(*, expert_seats: int, experts: int, unplaced: Sequence[str]) -> None:
    """Check-in opens only once every expert seat of the draw has a member and every member has a place.
    Refuses with 409."""
    if experts != expert_seats:
        raise Conflict(f"the committee has {experts} of its {expert_seats} experts", code="committee_incomplete",
                       details={"experts": experts, "seats": expert_seats})
    if unplaced:
        raise Conflict("every member needs a place before check-in", code="members_unplaced",
                       details={"members": list(unplaced)})


def check_all_checked_in(not_checked_in: Sequence[str]) -> None:
    """The evaluation starts only when every member has checked in. Refuses with 409."""
    if not_checked_in:
        raise Conflict("every member must check in before the evaluation starts", code="members_not_checked_in",
                       details={"members": list(not_checked_in)})


def check_place_region(*, in_region: bool, place_id: str, site_region: str, expert_region: str) -> None:
    """Remote cross-site evaluation (远程异地评标): each expert sits at a site of their own region, so nobody
    travels and the committee stays spread across regions. Refuses with 422 place_region_mismatch."""
    if not in_region:
        raise Unprocessable("an expert sits at a site of their own region", code="place_region_mismatch",
                            details={"place_id": place_id, "site_region": site_region,
                                     "expert_region": expert_region})


def check_identity(id_card_no: str, last4: str) -> None:
    """Identity at check-in: the last four characters of the expert's ID card, as registered. 422 otherwise."""
    if id_card_no[-4:].upper() != last4.strip().upper():
        raise Unprocessable("the identity does not match the registered expert", code="identity_mismatch")


def check_declared_bidders(declared: Sequence[str], bidders: Sequence[str]) -> None:
    """A conflict is declared against bidders of this lot only. Refuses with 422 not_a_bidder."""
    unknown = sorted(set(declared) - set(bidders))
    if unknown:
        raise Unprocessable("a conflict names an organisation that is not a bidder of this lot", code="not_a_bidder",
                            details={"organisations": unknown})


# ---------------------------------------------------------------------------------------------------------
# Chair election (推选组长). The committee elects its chair from among its members (评标委员会和评标方法暂行规定
# 第九条: 评标委员会负责人由评标委员会成员推举产生); the tenderer's representative may not be chair (PRODUCT.md
# "Rules"). Each member votes once.

@dataclass(frozen=True)
class ChairOutcome:
    """`elected` once decided; `how` says by what: majority (more than half of the committee), plurality
    (everyone voted, one clear leader), or None with `tied` set: everyone voted and the leaders are level, so
    a verifiable draw among `tied` decides."""

    elected: str | None
    how: str | None
    tied: tuple[str, ...] = ()


def check_chair_candidate(kind: str, member_id: str) -> None:
    if kind == "representative":
        raise Unprocessable("a tenderer representative (招标人代表) cannot be chair", code="representative_cannot_chair",
                            details={"member_id": member_id, "rule": "PRODUCT.md Rules: 招标人代表不得担任评标委员会组长"})


def chair_outcome(votes: Mapping[str, str], members: Sequence[str]) -> ChairOutcome:
    """Count `votes` (voter → candidate) of a committee of `members`."""
    counts: dict[str, int] = {}
    for candidate in votes.values():
        counts[candidate] = counts.get(candidate, 0) + 1
    for candidate, n in counts.items():
        if 2 * n > len(members):
            return ChairOutcome(candidate, "majority")
    if not counts or set(votes) != set(members):
        return ChairOutcome(None, None)
    top = max(counts.values())
    leaders = tuple(sorted(c for c, n in counts.items() if n == top))
    if len(leaders) == 1:
        return ChairOutcome(leaders[0], "plurality")
    return ChairOutcome(None, None, leaders)


# ---------------------------------------------------------------------------------------------------------
# Qualification and compliance review (资格审查 / 符合性审查). Each member votes pass or fail for every bidder on
# every requirement, giving reasons for a fail; a requirement is met when more than half of the committee says
# so. A bid that fails any requirement is rejected (否决投标, 招标投标法实施条例 第51条 lists the grounds), with
# the reasons of those who failed it. When fewer than 3 compliant bids remain the bids lack competition and the
# committee rejects them all (评标委员会和评标方法暂行规定 第二十七条; 招标投标法 第42条): the lot fails.

REVIEW_KINDS = ("qualification", "compliance")
MIN_COMPLIANT_BIDS = 3


@dataclass(frozen=True)
class ReviewBallot:
    member: str
    bidder: str
    requirement: str
    passed: bool
    reason: str | None


@dataclass(frozen=True)
class BidderReview:
    bidder: str
    passed: bool
    failed: tuple[dict, ...]  # {"requirement", "passes", "fails", "reasons"}


@dataclass(frozen=True)
class ReviewResult:
    bidders: tuple[BidderReview, ...]
    lot_failed: bool

    @property
    def compliant(self) -> list[str]:
        return [b.bidder for b in self.bidders if b.passed]


def check_review_ballot(passed: bool, reason: str | None) -> str | None:
    """A fail needs its reason (the report states why each bid was rejected). 422 reason_required."""
    reason = (reason or "").strip() or None
    if not passed and reason is None:
        raise Unprocessable("a fail needs a reason", code="reason_required", details={"field": "reason"})
    return reason


def missing_ballots(members: Sequence[str], bidders: Sequence[str], requirements: Sequence[str],
                    ballots: Sequence[ReviewBallot]) -> list[dict]:
    have = {(b.member, b.bidder, b.requirement) for b in ballots}
    return [{"member": m, "bidder": b, "requirement": r} for m in members for b in bidders for r in requirements
            if (m, b, r) not in have]


def review_result(members: Sequence[str], bidders: Sequence[str], requirements: Sequence[str],
                  ballots: Sequence[ReviewBallot]) -> ReviewResult:
    """Decide the review by majority; every member must have voted on every item (409 review_incomplete)."""
    missing = missing_ballots(members, bidders, requirements, ballots)
    if missing:
        raise Conflict("every member votes on every requirement of every bidder first", code="review_incomplete",
                       details={"missing": missing[:20], "missing_count": len(missing)})
    out = []
    for bidder in bidders:
        failed = []
        for requirement in requirements:
            mine = [b for b in ballots if b.bidder == bidder and b.requirement == requirement and b.member in members]
            passes = sum(1 for b in mine if b.passed)
            if 2 * passes <= len(members):
                failed.append({"requirement": requirement, "passes": passes, "fails": len(mine) - passes,
                               "reasons": sorted(b.reason for b in mine if not b.passed and b.reason)})
        out.append(BidderReview(bidder, not failed, tuple(failed)))
    compliant = sum(1 for b in out if b.passed)
    return ReviewResult(tuple(out), compliant < MIN_COMPLIANT_BIDS)
