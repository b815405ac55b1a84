"""Score flags of ALGORITHMS.md §2: each blocks closing scoring until corrected or justified in writing. Pure.

- inconsistent objective score: an objective criterion got different scores from different members;
- deviant score (畸高畸低): a member's score differs from the mean of the OTHER members' scores for the same
  bidder and criterion by more than 20% (configurable) of the criterion's maximum;
- low score: below 60% of the criterion's maximum; it needs a reason.

Flags are recomputed from the sheets as they stand, so a corrected score simply stops raising its flag. A written
justification closes a flag only for the score it was written about: change the score and it must be justified
again. Works on incomplete sheets too, so the chair and the supervisor can watch flags while members score.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from evaluation.scoring import Method, Sheet, decimal_str, exact, round_quotient

log = logging.getLogger(__name__)

__all__ = ["INCONSISTENT_OBJECTIVE", "DEVIANT", "LOW", "FlagRules", "Flag", "Justification", "detect_flags",
           "open_flags", "flags_by_key"]

INCONSISTENT_OBJECTIVE = "inconsistent_objective_score"
DEVIANT = "deviant_score"        # 畸高畸低
LOW = "low_score"


@dataclass(frozen=True)
class FlagRules:
    """The thresholds, as fractions of the criterion's maximum."""

    deviation: Decimal = Decimal("0.20")
    low: Decimal = Decimal("0.60")


@dataclass(frozen=True)
class Flag:
    """One flagged score: which kind, whose score, for which bidder and criterion, and the figures behind it."""

    kind: str
    member: str
    bidder: str
    criterion: str
    score: Decimal
    reference: Decimal | None = None   # deviant: mean of the others; objective: the majority score, if any
    limit: Decimal | None = None       # deviant: the allowed distance; low: the lowest score needing no reason

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a justification must name: kind, member, bidder, criterion."""
        return (self.kind, self.member, self.bidder, self.criterion)

    def to_json(self) -> dict[str, Any]:
        """The flag as listed in the report and the API; numbers as decimal strings."""
        return {"kind": self.kind, "member": self.member, "bidder": self.bidder, "criterion": self.criterion,
                "score": decimal_str(self.score),
                "reference": None if self.reference is None else decimal_str(self.reference),
                "limit": None if self.limit is None else decimal_str(self.limit)}


@dataclass(frozen=True)
class Justification:
    """A member's written reason for a flagged score, about that very score (说明理由)."""

    kind: str
    member: str
    bidder: str
    criterion: str
    score: Decimal
    text: str

    def closes(self, flag: Flag) -> bool:
        """True when this reason is about this flag's score and says something."""
        return ((self.kind, self.member, self.bidder, self.criterion) == flag.key and self.score == flag.score
                and bool(self.text.strip()))


def detect_flags(method: Method, members: Sequence[str], sheets: Iterable[Sheet],
                 rules: FlagRules = FlagRules()) -> list[Flag]:
    """Every flag the sheets raise, ordered by bidder, criterion, member and kind."""
    order = {m: i for i, m in enumerate(members)}
    cells: dict[tuple[str, str], list[tuple[str, Decimal]]] = {}
    bidder_order: dict[str, int] = {}
    for s in sheets:
        bidder_order.setdefault(s.bidder, len(bidder_order))
        for name, score in s.scores.items():
            cells.setdefault((s.bidder, name), []).append((s.member, score))
    flags: list[Flag] = []
    for c_index, c in enumerate(method.criteria):
        low_limit = rules.low * c.max
        allowed = rules.deviation * c.max
        for bidder in bidder_order:
            cell = sorted(cells.get((bidder, c.name), ()), key=lambda ms: order.get(ms[0], len(order)))
            if not cell:
                continue
            if c.objective:
                flags.extend(_inconsistent(bidder, c.name, cell))
            others = len(cell) - 1
            with exact():
                total = sum((score for _, score in cell), Decimal(0))
                # |score − rest/others| > allowed, multiplied through by `others` to stay exact
                limit = allowed * others
                for member, score in cell:
                    rest = total - score
                    if others and abs(score * others - rest) > limit:
                        flags.append(Flag(DEVIANT, member, bidder, c.name, score,
                                          round_quotient(rest, others, method.decimals), allowed))
                    if score < low_limit:
                        flags.append(Flag(LOW, member, bidder, c.name, score, None, low_limit))
    kinds = {INCONSISTENT_OBJECTIVE: 0, DEVIANT: 1, LOW: 2}
    c_order = {c.name: i for i, c in enumerate(method.criteria)}
    flags.sort(key=lambda f: (bidder_order[f.bidder], c_order[f.criterion], order.get(f.member, len(order)),
                              kinds[f.kind]))
    return flags


def _inconsistent(bidder: str, criterion: str, cell: list[tuple[str, Decimal]]) -> list[Flag]:
    """Members off the majority score of an objective criterion; everyone when no single score leads."""
    counts = Counter(score for _, score in cell)
    if len(counts) < 2:
        return []
    (top, n_top), (_, n_next) = counts.most_common(2)
    majority = top if n_top > n_next else None
    return [Flag(INCONSISTENT_OBJECTIVE, member, bidder, criterion, score, majority, None)
            for member, score in cell if majority is None or score != majority]


def open_flags(flags: Iterable[Flag], justifications: Iterable[Justification]) -> list[Flag]:
    """The flags no justification closes yet; scoring may close only when this is empty."""
    by_key: dict[tuple[str, str, str, str], list[Justification]] = {}
    for j in justifications:
        by_key.setdefault((j.kind, j.member, j.bidder, j.criterion), []).append(j)
    return [f for f in flags if not any(j.closes(f) for j in by_key.get(f.key, ()))]


def flags_by_key(flags: Iterable[Flag]) -> Mapping[tuple[str, str, str, str], Flag]:
    """Flags indexed by what a justification names."""
    return {f.key: f for f in flags}
