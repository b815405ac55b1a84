"""Committee and avoidance rules for expert draws. Pure: callers pass records and the time in.

- Committee size (评标委员会组成): minimum sizes, odd numbers, experts at least two thirds.
- Avoidance (回避): who may not be drawn for a given project, with a stable reason per expert.
- Quotas: what a draw request may ask for, and the candidate list the draw algorithm receives.
One person per employer per draw is enforced by the draw algorithm itself (evidence.randomness).
"""
from __future__ import annotations

import enum
import functools
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from core.errors import Unprocessable
from expert_pool.regions import check_region_code, region_matches
from expert_pool.taxonomy import Taxonomy

log = logging.getLogger(__name__)

# Trading family codes (交易大类) as stored on Tender.family; trading/data/categories.json owns the full list.
FAMILY_CONSTRUCTION = "FJSZ"              # 房建市政
FAMILY_LAND_MINING = "TDKY"               # 土地与矿业权
FAMILY_GOVERNMENT_PROCUREMENT = "ZFCG"    # 政府采购
FAMILY_STATE_PROPERTY = "GYCQ"            # 国有产权

LARGE_PROCUREMENT_BUDGET = Decimal("10000000")  # ¥10M: government procurement at or above it needs 7 members


class PanelKind(enum.StrEnum):
    """The kind of panel being formed."""

    EVALUATION_COMMITTEE = "evaluation_committee"        # 评标委员会 / 评审委员会
    NEGOTIATION_PANEL = "negotiation_panel"              # 竞争性谈判小组 / 竞争性磋商小组
    INQUIRY_PANEL = "inquiry_panel"                      # 询价小组


# ---------------------------------------------------------------------------------------------------------
# Committee size.

def minimum_committee_size(*, panel: PanelKind | str = PanelKind.EVALUATION_COMMITTEE, family: str | None = None,
                           budget: Decimal | None = None) -> int:
    """The smallest lawful panel: 3 for negotiation and inquiry, 5 otherwise, 7 for large government procurement."""
    panel = PanelKind(panel)
    if budget is not None and not isinstance(budget, Decimal):
        raise TypeError("the budget must be a Decimal")
    if panel is not PanelKind.EVALUATION_COMMITTEE:
        return 3
    if family == FAMILY_GOVERNMENT_PROCUREMENT and budget is not None and budget >= LARGE_PROCUREMENT_BUDGET:
        return 7
    return 5


def check_committee(*, members: int, representatives: int = 0,
                    panel: PanelKind | str = PanelKind.EVALUATION_COMMITTEE, family: str | None = None,
                    budget: Decimal | None = None) -> None:
    """Refuse a panel of `members` people, `representatives` of them sent by the tenderer, that breaks the rules.

    Codes: `committee_too_small`, `committee_even`, `experts_below_two_thirds`, `invalid_committee`.
    """
    if isinstance(members, bool) or not isinstance(members, int) or members < 0:
        raise Unprocessable("the number of members must be a non-negative integer", code="invalid_committee")
    if isinstance(representatives, bool) or not isinstance(representatives, int) or not 0 <= representatives <= members:
        raise Unprocessable("the number of tenderer representatives must be between 0 and the number of members",
                            code="invalid_committee")
    minimum = minimum_committee_size(panel=panel, family=family, budget=budget)
    if members < minimum:
        raise Unprocessable(f"this panel needs at least {minimum} members, not {members}",
                            code="committee_too_small", details={"members": members, "minimum": minimum})
    if members % 2 == 0:
        raise Unprocessable(f"a panel must have an odd number of members, not {members}",
                            code="committee_even", details={"members": members})
    experts = members - representatives
    # experts / members >= 2/3, kept in integers so no rounding can let a panel slip through.
    if 3 * experts < 2 * members:
        required = -(-2 * members // 3)
        raise Unprocessable(f"experts must be at least two thirds of the panel: {experts} of {members}",
                            code="experts_below_two_thirds",
                            details={"members": members, "experts": experts, "required_experts": required})


# ---------------------------------------------------------------------------------------------------------
# Avoidance.

class ExpertStatus(enum.StrEnum):
    """Standing of an expert in the pool."""

    ACTIVE = "active"
    SUSPENDED = "suspended"   # 暂停: e.g. after misconduct or poor ratings
    RETIRED = "retired"       # 退出 / 解聘: left the pool


class ExclusionReason(enum.StrEnum):
    """Why an expert may not be drawn, in the order they are reported when several apply."""

    RETIRED = "retired"
    SUSPENDED = "suspended"
    ON_LEAVE = "on_leave"
    EMPLOYER_IS_TENDERER = "employer_is_tenderer"
    EMPLOYER_IS_BIDDER = "employer_is_bidder"
    EMPLOYER_IS_AUTHORITY = "employer_is_authority"
    DECLARED_CONFLICT = "declared_conflict"
    OVER_MONTHLY_CAP = "over_monthly_cap"
    FAMILIAR_FACE = "familiar_face"
    # Supplementary draws (补抽) only: ALGORITHMS.md §1 excludes everyone already picked, and the employers of
    # those who may still sit stay taken, so the committee keeps one person per employer across both draws.
    ALREADY_PICKED = "already_picked"
    EMPLOYER_SERVING = "employer_serving"


def _aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return at


@dataclass(frozen=True)
class LeavePeriod:
    """An expert's declared unavailability (请假), half-open: [starts_at, ends_at)."""

    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        _aware(self.starts_at, "leave start")
        _aware(self.ends_at, "leave end")
        if self.ends_at <= self.starts_at:
            raise ValueError("a leave period must end after it starts")

    def covers(self, at: datetime) -> bool:
        """Whether the expert is away at `at`."""
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class ServiceRecord:
    """One past (or already scheduled) evaluation the expert sat on, for a given tenderer."""

    tenderer_id: str
    served_at: datetime

    def __post_init__(self) -> None:
        _aware(self.served_at, "service time")


@dataclass(frozen=True)
class ExpertRecord:
    """What avoidance and quota matching need to know about one expert; no names."""

    public_id: str
    employer_id: str | None
    status: ExpertStatus = ExpertStatus.ACTIVE
    specialties: frozenset[str] = frozenset()
    region: str | None = None                          # the expert's city code (GB/T 2260)
    leave: tuple[LeavePeriod, ...] = ()
    declared_conflicts: frozenset[str] = frozenset()   # org ids the expert has declared ties to
    draws_this_month: int = 0
    service_history: tuple[ServiceRecord, ...] = ()

    @property
    def employer_key(self) -> str:
        """The employer as the draw sees it; an expert without an employer is their own unit."""
        return self.employer_id or self.public_id


@dataclass(frozen=True)
class DrawContext:
    """The project facts avoidance is judged against."""

    tenderer_id: str
    session_at: datetime
    bidder_ids: frozenset[str] = frozenset()
    authority_ids: frozenset[str] = frozenset()   # competent authority and supervisor of the project
    monthly_cap: int | None = None                # most draws per expert per calendar month; None: no cap
    familiar_window_days: int = 0                 # 0 switches the familiar-faces rule off

    @functools.cached_property
    def parties(self) -> frozenset[str]:
        """The tenderer and the bidders: the organisations a declared conflict is checked against."""
        return frozenset({self.tenderer_id, *self.bidder_ids})

    @functools.cached_property
    def familiar_since(self) -> datetime:
        """Service for the tenderer from this time on makes a familiar face."""
        return self.session_at - timedelta(days=self.familiar_window_days)

    def __post_init__(self) -> None:
        _aware(self.session_at, "the session time")
        if self.monthly_cap is not None and self.monthly_cap < 0:
            raise ValueError("the monthly cap cannot be negative")
        if self.familiar_window_days < 0:
            raise ValueError("the familiar-faces window cannot be negative")


@dataclass(frozen=True)
class Screening:
    """The outcome of avoidance: who may be drawn and why each other expert may not."""

    eligible: tuple[ExpertRecord, ...]
    reasons: Mapping[str, tuple[ExclusionReason, ...]] = field(default_factory=dict)

    def reason(self, public_id: str) -> ExclusionReason | None:
        """The main reason an expert is excluded, or None when eligible."""
        found = self.reasons.get(public_id)
        return found[0] if found else None

    def counts(self) -> dict[str, int]:
        """How many experts each main reason excluded; the counts add up to the number excluded."""
        counter = Counter(r[0].value for r in self.reasons.values())
        return {reason.value: counter[reason.value] for reason in ExclusionReason if counter[reason.value]}


def exclusion_reasons(expert: ExpertRecord, context: DrawContext) -> tuple[ExclusionReason, ...]:
    """Every reason `expert` may not serve on this project, in ExclusionReason order; empty when eligible."""
    at = context.session_at
    found: set[ExclusionReason] = set()
    if expert.status is ExpertStatus.RETIRED:
        found.add(ExclusionReason.RETIRED)
    elif expert.status is ExpertStatus.SUSPENDED:
        found.add(ExclusionReason.SUSPENDED)
    if any(p.covers(at) for p in expert.leave):
        found.add(ExclusionReason.ON_LEAVE)
    if expert.employer_id is not None:
        if expert.employer_id == context.tenderer_id:
            found.add(ExclusionReason.EMPLOYER_IS_TENDERER)
        if expert.employer_id in context.bidder_ids:
            found.add(ExclusionReason.EMPLOYER_IS_BIDDER)
        if expert.employer_id in context.authority_ids:
            found.add(ExclusionReason.EMPLOYER_IS_AUTHORITY)
    if expert.declared_conflicts and expert.declared_conflicts & context.parties:
        found.add(ExclusionReason.DECLARED_CONFLICT)
    if context.monthly_cap is not None and expert.draws_this_month >= context.monthly_cap:
        found.add(ExclusionReason.OVER_MONTHLY_CAP)
    if context.familiar_window_days and expert.service_history:
        since = context.familiar_since
        # A session already scheduled for the same tenderer counts too: it is the same familiar face.
        if any(s.tenderer_id == context.tenderer_id and s.served_at >= since for s in expert.service_history):
            found.add(ExclusionReason.FAMILIAR_FACE)
    if not found:
        return ()  # the common case, and a pool can hold 100,000 experts
    return tuple(r for r in ExclusionReason if r in found)


def screen_experts(experts: Iterable[ExpertRecord], context: DrawContext, *,
                   already_picked: frozenset[str] = frozenset(),
                   employers_serving: frozenset[str] = frozenset()) -> Screening:
    """Apply every avoidance rule; eligible experts keep their input order.

    For a supplementary draw, `already_picked` are the public ids drawn before and `employers_serving` the
    employers (as ExpertRecord.employer_key) of people who may still sit on the committee.
    """
    eligible: list[ExpertRecord] = []
    reasons: dict[str, tuple[ExclusionReason, ...]] = {}
    for expert in experts:
        found = exclusion_reasons(expert, context)
        if expert.public_id in already_picked:
            found += (ExclusionReason.ALREADY_PICKED,)
        elif expert.employer_key in employers_serving:
            found += (ExclusionReason.EMPLOYER_SERVING,)
        if found:
            reasons[expert.public_id] = found
        else:
            eligible.append(expert)
    return Screening(eligible=tuple(eligible), reasons=reasons)


# ---------------------------------------------------------------------------------------------------------
# Quotas and the draw's candidate list.

@dataclass(frozen=True)
class ExpertQuota:
    """One line of an expert draw request (抽取条件): a specialty, an optional region, how many."""

    name: str
    specialty: str
    count: int
    backups: int = 0
    region: str | None = None

    def to_request(self) -> dict[str, Any]:
        """The quota as it appears in the draw request JSON (no region key when there is none)."""
        out: dict[str, Any] = {"name": self.name, "count": self.count, "backups": self.backups,
                               "specialty": self.specialty}
        if self.region is not None:
            out["region"] = self.region
        return out

    def accepts(self, expert: ExpertRecord, taxonomy: Taxonomy) -> bool:
        """Whether `expert` can fill this quota: a matching specialty and, if set, a region at or below it."""
        if not region_matches(self.region, expert.region):
            return False
        return taxonomy.matches_any(self.specialty, expert.specialties)


def _int_field(raw: Mapping[str, Any], key: str, default: int | None = None) -> Any:
    value = raw.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def validate_quotas(raw_quotas: Sequence[Mapping[str, Any]], taxonomy: Taxonomy) -> list[ExpertQuota]:
    """Check the quotas of an expert draw request and return them in order.

    Codes: `no_quotas`, `invalid_quota_name`, `duplicate_quota_name`, `unknown_specialty`, `invalid_count`,
    `invalid_backups`, `invalid_region`.
    """
    if not raw_quotas:
        raise Unprocessable("a draw needs at least one quota", code="no_quotas")
    quotas: list[ExpertQuota] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_quotas):
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise Unprocessable(f"quota #{i + 1} needs a name", code="invalid_quota_name", details={"index": i})
        if name in names:
            raise Unprocessable(f"quota name {name!r} is used twice", code="duplicate_quota_name",
                                details={"quota": name})
        names.add(name)
        specialty = raw.get("specialty")
        if not isinstance(specialty, str) or specialty not in taxonomy:
            raise Unprocessable(f"quota {name!r}: unknown specialty code {specialty!r}", code="unknown_specialty",
                                details={"quota": name, "specialty": specialty})
        count = _int_field(raw, "count")
        if count is None or count <= 0:
            raise Unprocessable(f"quota {name!r}: the count must be a positive integer", code="invalid_count",
                                details={"quota": name, "count": raw.get("count")})
        backups = _int_field(raw, "backups", 0)
        if backups is None or backups < 0:
            raise Unprocessable(f"quota {name!r}: backups must be zero or more", code="invalid_backups",
                                details={"quota": name, "backups": raw.get("backups")})
        region = raw.get("region")
        if region is not None:
            try:
                check_region_code(region, "region")
            except Unprocessable as err:
                raise Unprocessable(f"quota {name!r}: {err.message}", code="invalid_region",
                                    details={"quota": name, "region": region}) from err
        quotas.append(ExpertQuota(name=name, specialty=specialty, count=count, backups=backups, region=region))
    return quotas


def draw_request(draw_id: str, quotas: Sequence[ExpertQuota], **extra: Any) -> dict[str, Any]:
    """The draw request JSON for evidence.randomness: the draw id, the ordered quotas and any extra fields."""
    return {**extra, "draw_id": draw_id, "quotas": [q.to_request() for q in quotas]}


def build_candidates(eligible: Iterable[ExpertRecord], quotas: Sequence[ExpertQuota],
                     taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """The draw's candidate list: each eligible expert who fills at least one quota, sorted by public id."""
    candidates = []
    # Many experts share specialties: remember which quotas each (specialties, region) fills instead of walking the
    # taxonomy again for each of them.
    answers: dict[tuple[frozenset[str], str | None], list[str]] = {}
    for expert in eligible:
        key = (expert.specialties, expert.region)
        fills = answers.get(key)
        if fills is None:
            fills = answers[key] = [q.name for q in quotas if q.accepts(expert, taxonomy)]
        if fills:
            candidates.append({"id": expert.public_id, "employer": expert.employer_key, "quotas": list(fills)})
    candidates.sort(key=lambda c: c["id"])
    for a, b in zip(candidates, candidates[1:]):
        if a["id"] == b["id"]:
            raise ValueError(f"expert {a['id']} is listed twice")
    return candidates
