"""Aggregation and ranking of score sheets, ALGORITHMS.md §2. Pure: no I/O, no clock, no ORM.

Everything an outsider needs to re-check the cents is here and in `score_record`: the inputs as frozen
dataclasses, the exact rounding stages, the price formulas, the ranking with its tie rules, and the drawing of
lots between bidders still tied after price and technical score (a §1 draw from `evidence.randomness`).

Every quotient is taken exactly (by integer division at the rounding place, or as a fraction) and rounded once,
half-up to the tender's decimals, at the stage the spec names. Sums of scores and prices are exact: they run in a
decimal context that traps any rounding.

How a service drives it when scoring closes:
1. `validate_score` on every saved score (422 `score_out_of_range`); `flags.detect_flags` / `flags.open_flags`
   until no flag is open;
2. `evaluate(data)`; if `pending_ties` is not empty, commit a secret per tie draw (publish its commitment), take the
   supervisor's entropy, and make each record with `tie_draw_input` + `evidence.randomness.verification_record`
   (or `tie_drawer` for all groups with one secret);
3. `evaluate(data, tie_draws=records)`, then `score_record.build_record` for the report's `record.json`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, DecimalException, Inexact, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping, Sequence

from core.errors import Conflict, Unprocessable
from evidence import randomness

log = logging.getLogger(__name__)

__all__ = [
    "COMPREHENSIVE", "LOWEST_PRICE", "MEAN", "TRIMMED_MEAN", "TRIM_MIN_MEMBERS", "DROP_EXTREMES_MIN_PRICES",
    "TIE_QUOTA", "ScoringInputError", "ScoreOutOfRange", "SheetForRejectedBidder", "SheetsIncomplete",
    "TieDrawMismatch", "Criterion", "Adjustment", "Bidder", "Sheet", "LowestPriceFormula", "MeanBenchmarkFormula",
    "Method", "ScoringInput", "RankedBid", "TieGroup", "Evaluation", "round_half_up", "validate_score",
    "parse_score", "validate_input", "criterion_scores", "price_benchmark", "price_scores", "evaluate",
    "tie_draw_input", "check_tie_draw", "tie_drawer", "candidates", "decimal_str", "round_quotient", "exact",
]

COMPREHENSIVE = "comprehensive"        # 综合评估法
LOWEST_PRICE = "lowest_price"          # 经评审的最低投标价法
MEAN = "mean"
TRIMMED_MEAN = "trimmed_mean"
TRIM_MIN_MEMBERS = 7                   # the trimmed mean applies only from 7 members on
DROP_EXTREMES_MIN_PRICES = 5           # the mean benchmark drops extremes only when 5+ valid prices remain
TIE_QUOTA = "tie"                      # the one quota of a tie draw: every tied bidder, in drawn order
ZERO = Decimal(0)
# Sums of scores and prices must never be rounded; 60 digits hold any realistic tender many times over, and
# the Inexact trap turns the impossible case into an error instead of a wrong cent.
_EXACT_PREC = 60
# Prices, amounts, maxima and formula parameters stay within these bounds, so that every exact step stays small.
MAX_AMOUNT = Decimal("1E15")
MIN_EXPONENT = -6


class ScoringInputError(Unprocessable):
    """The method, members, bidders or sheets do not form a well-formed evaluation."""

    code = "invalid_scoring_input"


class ScoreOutOfRange(Unprocessable):
    """A score lies outside [0, max] of its criterion (ALGORITHMS.md §2 "Input"): refused, never stored."""

    code = "score_out_of_range"


class SheetForRejectedBidder(Unprocessable):
    """A sheet scores a bidder that failed qualification or compliance review: only compliant bids are scored."""

    code = "bidder_not_compliant"


class SheetsIncomplete(Conflict):
    """Aggregation needs one complete sheet from every member for every compliant bidder."""

    code = "sheets_incomplete"


class TieDrawMismatch(Unprocessable):
    """A tie draw's record does not recompute, or does not draw among exactly the tied bidders."""

    code = "tie_draw_mismatch"


# ---------------------------------------------------------------------------------------------------------
# Inputs.

@dataclass(frozen=True)
class Criterion:
    """One scoring criterion (评分因素) with its maximum; an objective one must get equal scores from all."""

    name: str
    max: Decimal
    objective: bool = False


@dataclass(frozen=True)
class Adjustment:
    """A quantified adjustment (价格调整) of the lowest evaluated price method; positive raises the price."""

    reason: str
    amount: Decimal


@dataclass(frozen=True)
class Bidder:
    """A bid as the committee sees it after review: its price, whether it is compliant, its adjustments."""

    id: str
    price: Decimal
    compliant: bool
    adjustments: tuple[Adjustment, ...] = ()


@dataclass(frozen=True)
class Sheet:
    """One member's scores for one bidder, criterion name → score (评分表)."""

    member: str
    bidder: str
    scores: Mapping[str, Decimal]


@dataclass(frozen=True)
class LowestPriceFormula:
    """Government-procurement rule: benchmark = the lowest valid price, score = benchmark / price × weight."""

    def to_json(self) -> dict[str, Any]:
        """The stored and published form."""
        return {"rule": "lowest_price"}


@dataclass(frozen=True)
class MeanBenchmarkFormula:
    """Benchmark B = mean of the valid prices × K; E points lost per 1% of deviation from B, floor 0."""

    k: Decimal
    e: Decimal
    drop_extremes: bool = False

    def to_json(self) -> dict[str, Any]:
        """The stored and published form."""
        return {"rule": "mean_benchmark", "k": decimal_str(self.k), "e": decimal_str(self.e),
                "drop_extremes": self.drop_extremes}


PriceFormula = LowestPriceFormula | MeanBenchmarkFormula


@dataclass(frozen=True)
class Method:
    """The tender's evaluation method (评标办法) as far as arithmetic goes."""

    kind: str = COMPREHENSIVE
    criteria: tuple[Criterion, ...] = ()
    price_weight: Decimal | None = None
    price_formula: PriceFormula | None = None
    aggregation: str | None = MEAN
    decimals: int = 2

    @classmethod
    def lowest_price(cls, decimals: int = 2) -> Method:
        """The lowest evaluated price method: no criteria, no price score."""
        return cls(kind=LOWEST_PRICE, criteria=(), price_weight=None, price_formula=None, aggregation=None,
                   decimals=decimals)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Method:
        """Read the form the tender stores (trading.evaluation_methods) and the score record publishes; numbers as strings."""
        if not isinstance(data, Mapping):
            raise ScoringInputError("the evaluation method must be an object")
        kind = data.get("method")
        decimals = _decimals(data.get("decimals", 2))
        if kind == LOWEST_PRICE:
            return cls.lowest_price(decimals)
        if kind != COMPREHENSIVE:
            raise ScoringInputError(f"unknown evaluation method {kind!r}", details={"field": "method"})
        raw_criteria = data.get("criteria")
        if not isinstance(raw_criteria, list):
            raise ScoringInputError("criteria must be a list", details={"field": "criteria"})
        criteria = []
        for i, c in enumerate(raw_criteria):
            if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
                raise ScoringInputError(f"criterion #{i} needs a name", details={"field": f"criteria[{i}]"})
            objective = c.get("objective", False)
            if not isinstance(objective, bool):
                raise ScoringInputError(f"criterion #{i}: objective is true or false",
                                        details={"field": f"criteria[{i}].objective"})
            criteria.append(Criterion(c["name"], _dec(c.get("max"), f"criteria[{i}].max"), objective))
        raw_formula = data.get("price_formula") or {"rule": "lowest_price"}
        if not isinstance(raw_formula, Mapping):
            raise ScoringInputError("price_formula must be an object", details={"field": "price_formula"})
        rule = raw_formula.get("rule")
        formula: PriceFormula
        if rule == "lowest_price":
            formula = LowestPriceFormula()
        elif rule == "mean_benchmark":
            drop = raw_formula.get("drop_extremes", False)
            if not isinstance(drop, bool):
                raise ScoringInputError("drop_extremes is true or false", details={"field": "price_formula"})
            formula = MeanBenchmarkFormula(_dec(raw_formula.get("k", "1"), "price_formula.k"),
                                           _dec(raw_formula.get("e"), "price_formula.e"), drop)
        else:
            raise ScoringInputError(f"unknown price formula {rule!r}", details={"field": "price_formula.rule"})
        return cls(kind=COMPREHENSIVE, criteria=tuple(criteria),
                   price_weight=_dec(data.get("price_weight"), "price_weight"), price_formula=formula,
                   aggregation=data.get("aggregation", MEAN), decimals=decimals)

    def to_json(self) -> dict[str, Any]:
        """The method's fields of the published record (`decimals` as a decimal string like every number)."""
        return {"method": self.kind, "decimals": str(self.decimals),
                "criteria": [{"name": c.name, "max": decimal_str(c.max), "objective": c.objective}
                             for c in self.criteria],
                "price_weight": None if self.price_weight is None else decimal_str(self.price_weight),
                "price_formula": None if self.price_formula is None else self.price_formula.to_json(),
                "aggregation": self.aggregation}

    def criterion(self, name: str) -> Criterion:
        """The criterion called `name`; an unknown name is bad input."""
        for c in self.criteria:
            if c.name == name:
                return c
        raise ScoringInputError(f"the method has no criterion {name!r}", details={"criterion": name})


@dataclass(frozen=True)
class ScoringInput:
    """Everything aggregation reads: the method, the committee, the bids after review, the submitted sheets."""

    method: Method
    members: tuple[str, ...]
    bidders: tuple[Bidder, ...]
    sheets: tuple[Sheet, ...] = ()


# ---------------------------------------------------------------------------------------------------------
# Outputs.

@dataclass(frozen=True)
class RankedBid:
    """One compliant bidder's line of the aggregated table (汇总表) and its place in the ranking."""

    bidder: str
    price: Decimal
    criteria: Mapping[str, Decimal]
    technical: Decimal | None          # sum of the rounded criterion scores (tie-break)
    price_score: Decimal | None
    total: Decimal | None
    evaluated_price: Decimal | None    # lowest evaluated price method only
    rank: int

    def to_json(self) -> dict[str, Any]:
        """The published ranking line; every number a decimal string."""
        return {"bidder": self.bidder, "criteria": {k: decimal_str(v) for k, v in self.criteria.items()},
                "price_score": _opt_str(self.price_score), "total": _opt_str(self.total),
                "evaluated_price": _opt_str(self.evaluated_price), "rank": str(self.rank)}


@dataclass(frozen=True)
class TieGroup:
    """Bidders equal on every ordered key; a §1 draw among them (ids sorted) fixes their order."""

    bidders: tuple[str, ...]
    first_rank: int


@dataclass(frozen=True)
class Evaluation:
    """The aggregated table in ranking order, the tie draws used, and ties still waiting for a draw."""

    ranking: tuple[RankedBid, ...]
    tie_draws: tuple[dict[str, Any], ...] = ()
    pending_ties: tuple[TieGroup, ...] = ()
    benchmark: Fraction | None = None   # the price benchmark (B or the lowest price), exact and unrounded

    @property
    def final(self) -> bool:
        """True once every tie is settled: only then may the ranking be published or candidates named."""
        return not self.pending_ties


# ---------------------------------------------------------------------------------------------------------
# Numbers.

def decimal_str(value: Decimal) -> str:
    """A decimal as a plain string, never in exponent notation; trailing zeros kept ("40.00" stays)."""
    return format(value, "f")


def _opt_str(value: Decimal | None) -> str | None:
    return None if value is None else decimal_str(value)


def _dec(value: Any, where: str) -> Decimal:
    """A decimal number from a decimal string (or a Decimal); floats are refused, never coerced."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = None
    else:
        number = None
    if number is None or not number.is_finite():
        raise ScoringInputError(f"{where} must be a decimal number written as a string",
                                details={"field": where, "value": str(value)[:40]})
    return number


def round_quotient(num: Decimal, den: Decimal | int, decimals: int) -> Decimal:
    """r(num / den) for den > 0, exactly: integer division at the rounding place, then half away from zero.

    Call it inside the exact context (`_Exact`): the scaled quotient must fit its precision, or it raises.
    """
    q, rem = divmod(abs(num).scaleb(decimals), den)
    if 2 * rem >= den:
        q += 1
    q = q.scaleb(-decimals)
    return -q if num < 0 and q else q


def _bounded(value: Any, where: str) -> None:
    """Refuse an amount or parameter beyond 10^15 or with more than 6 decimal places."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ScoringInputError(f"{where} must be a finite decimal number", details={"field": where})
    if abs(value) >= MAX_AMOUNT or value.as_tuple().exponent < MIN_EXPONENT:
        raise ScoringInputError(f"{where} lies beyond what scoring supports (below 10^15, at most 6 decimals)",
                                code="number_out_of_bounds", details={"field": where, "value": decimal_str(value)[:40]})


def _decimals(value: Any) -> int:
    if type(value) not in (int, str) or value not in (2, 3, "2", "3"):
        raise ScoringInputError("decimals is 2 or 3", details={"field": "decimals", "value": str(value)[:10]})
    return int(value)


def round_half_up(value: Fraction, decimals: int) -> Decimal:
    """r(x): the exact value rounded half away from zero to `decimals` places (Decimal's ROUND_HALF_UP)."""
    num, den = value.numerator, value.denominator
    q, rem = divmod(abs(num) * 10 ** decimals, den)
    if 2 * rem >= den:
        q += 1
    return Decimal(-q if num < 0 else q).scaleb(-decimals)


class _Exact:
    """A decimal context in which sums, products and `round_quotient` are exact or raise.

    A number with more digits than that (a score like 1E-1000) is bad input, not a server error.
    """

    def __enter__(self):
        self._cm = localcontext()
        ctx = self._cm.__enter__()
        ctx.prec = _EXACT_PREC
        ctx.traps[Inexact] = True
        return ctx

    def __exit__(self, exc_type, exc, tb):
        self._cm.__exit__(exc_type, exc, tb)
        if exc_type is not None and issubclass(exc_type, DecimalException):
            raise ScoringInputError("a score or amount has more digits than exact scoring supports",
                                    code="number_too_precise") from exc
        return False


def exact() -> _Exact:
    """A context manager for exact decimal arithmetic (60 digits, any rounding raises)."""
    return _Exact()


# ---------------------------------------------------------------------------------------------------------
# Input checks.

def validate_score(criterion: Criterion, score: Decimal) -> Decimal:
    """Refuse a score outside [0, max] of its criterion (422 `score_out_of_range`); return it unchanged."""
    if not isinstance(score, Decimal) or not score.is_finite():
        raise ScoringInputError(f"the score for {criterion.name!r} must be a finite decimal number",
                                details={"criterion": criterion.name})
    if score < 0 or score > criterion.max:
        raise ScoreOutOfRange(
            f"the score {decimal_str(score)} for {criterion.name!r} lies outside 0 to {decimal_str(criterion.max)}",
            details={"criterion": criterion.name, "score": decimal_str(score), "min": "0",
                     "max": decimal_str(criterion.max)})
    return score


def parse_score(criterion: Criterion, raw: Any) -> Decimal:
    """A score typed by a member, as a decimal string, checked against its criterion's range."""
    return validate_score(criterion, _dec(raw, f"scores.{criterion.name}"))


def _check_method(method: Method) -> None:
    if method.decimals not in (2, 3):
        raise ScoringInputError("decimals is 2 or 3", details={"field": "decimals"})
    if method.kind == LOWEST_PRICE:
        if method.criteria:
            raise ScoringInputError("the lowest evaluated price method has no scoring criteria")
        return
    if method.kind != COMPREHENSIVE:
        raise ScoringInputError(f"unknown evaluation method {method.kind!r}", details={"field": "method"})
    if not method.criteria:
        raise ScoringInputError("comprehensive scoring needs at least one criterion")
    names = [c.name for c in method.criteria]
    if len(set(names)) != len(names):
        raise ScoringInputError("criterion names must be distinct")
    for c in method.criteria:
        _bounded(c.max, f"criteria.{c.name}.max")
        if c.max <= 0:
            raise ScoringInputError(f"criterion {c.name!r} needs a maximum above zero", details={"criterion": c.name})
    _bounded(method.price_weight, "price_weight")
    if method.price_weight < 0:
        raise ScoringInputError("the price weight must be zero or more", details={"field": "price_weight"})
    if method.aggregation not in (MEAN, TRIMMED_MEAN):
        raise ScoringInputError("aggregation is mean or trimmed_mean", details={"field": "aggregation"})
    formula = method.price_formula
    if isinstance(formula, MeanBenchmarkFormula):
        for name, v in (("k", formula.k), ("e", formula.e)):
            _bounded(v, f"price_formula.{name}")
            if v <= 0:
                raise ScoringInputError(f"the price formula's {name.upper()} must be above zero",
                                        details={"field": f"price_formula.{name}"})
    elif not isinstance(formula, LowestPriceFormula):
        raise ScoringInputError("the price formula is lowest_price or mean_benchmark",
                                details={"field": "price_formula"})


def validate_input(data: ScoringInput) -> None:
    """Check that the inputs form a complete evaluation: every member scored every compliant bidder in full."""
    method = data.method
    _check_method(method)
    if len(set(data.members)) != len(data.members):
        raise ScoringInputError("a member appears twice", details={"field": "members"})
    ids = [b.id for b in data.bidders]
    if len(set(ids)) != len(ids):
        raise ScoringInputError("a bidder appears twice", details={"field": "bidders"})
    bidders = {b.id: b for b in data.bidders}
    compliant = [b for b in data.bidders if b.compliant]
    if not compliant:
        raise ScoringInputError("no compliant bid is left to evaluate", code="no_compliant_bids")
    for b in data.bidders:
        _bounded(b.price, f"bidders.{b.id}.price")
        if b.compliant and b.price <= 0:
            # both price formulas divide by the price
            raise ScoringInputError(f"bidder {b.id}'s price must be above zero", details={"bidder": b.id})
        for a in b.adjustments:
            _bounded(a.amount, f"bidders.{b.id}.adjustments")
    if method.kind == LOWEST_PRICE:
        if data.sheets:
            raise ScoringInputError("the lowest evaluated price method takes no score sheets")
        return
    if not data.members:
        raise ScoringInputError("comprehensive scoring needs at least one member", details={"field": "members"})
    members = set(data.members)
    wanted = {c.name for c in method.criteria}
    seen: set[tuple[str, str]] = set()
    for s in data.sheets:
        if s.member not in members:
            raise ScoringInputError(f"{s.member} is not a member of this committee", details={"member": s.member})
        bidder = bidders.get(s.bidder)
        if bidder is None:
            raise ScoringInputError(f"{s.bidder} is not a bidder of this lot", details={"bidder": s.bidder})
        if not bidder.compliant:
            raise SheetForRejectedBidder(f"bidder {s.bidder} was rejected in review and is not scored",
                                         details={"bidder": s.bidder, "member": s.member})
        if (s.member, s.bidder) in seen:
            raise ScoringInputError(f"{s.member} has two sheets for {s.bidder}",
                                    details={"member": s.member, "bidder": s.bidder})
        seen.add((s.member, s.bidder))
        if s.scores.keys() != wanted:
            unknown = set(s.scores) - wanted
            if unknown:
                raise ScoringInputError(f"the sheet of {s.member} for {s.bidder} scores unknown criteria",
                                        details={"member": s.member, "bidder": s.bidder, "criteria": sorted(unknown)})
            raise SheetsIncomplete(f"the sheet of {s.member} for {s.bidder} leaves criteria unscored",
                                   details={"member": s.member, "bidder": s.bidder,
                                            "criteria": sorted(wanted - set(s.scores))})
    # the ranges column by column, with C-level min/max; a bad column is then searched for its first bad score
    for c in method.criteria:
        column = [s.scores[c.name] for s in data.sheets]
        if not column:
            continue
        try:
            fine = set(map(type, column)) == {Decimal} and min(column) >= 0 and max(column) <= c.max
        except InvalidOperation:        # a NaN cannot be ordered
            fine = False
        if not fine:
            for v in column:
                validate_score(c, v)    # raises with the reason
    absent = [(m, b.id) for m in data.members for b in compliant if (m, b.id) not in seen]
    if absent:
        raise SheetsIncomplete(f"{len(absent)} score sheets are missing",
                               details={"missing": [{"member": m, "bidder": b} for m, b in absent[:20]]})


# ---------------------------------------------------------------------------------------------------------
# Aggregation (ALGORITHMS.md §2, "Rounding stages").

def criterion_scores(data: ScoringInput) -> dict[str, dict[str, Decimal]]:
    """bidder → criterion → r(mean) or r(trimmed mean) of the members' scores; compliant bidders only."""
    method = data.method
    d = method.decimals
    n = len(data.members)
    trim = method.aggregation == TRIMMED_MEAN and n >= TRIM_MIN_MEMBERS
    count = n - 2 if trim else n
    names = [c.name for c in method.criteria]
    by_bidder: dict[str, list[Mapping[str, Decimal]]] = {}
    for s in data.sheets:
        by_bidder.setdefault(s.bidder, []).append(s.scores)
    out: dict[str, dict[str, Decimal]] = {}
    with _Exact():
        for b in data.bidders:
            if not b.compliant:
                continue
            # one row per member, one column per criterion
            rows = [[scores[name] for name in names] for scores in by_bidder[b.id]]
            row: dict[str, Decimal] = {}
            for name, values in zip(names, zip(*rows)):
                total = sum(values, ZERO)
                if trim:
                    total = total - max(values) - min(values)
                row[name] = round_quotient(total, count, d)
            out[b.id] = row
    return out


def price_benchmark(method: Method, prices: Sequence[Decimal]) -> Fraction:
    """The exact, unrounded benchmark over the compliant prices: the lowest one, or B = mean × K."""
    formula = method.price_formula
    if isinstance(formula, LowestPriceFormula):
        return Fraction(min(prices))
    kept = sorted(prices)
    if formula.drop_extremes and len(kept) >= DROP_EXTREMES_MIN_PRICES:
        kept = kept[1:-1]
    with _Exact():
        total = sum(kept, Decimal(0))
    return Fraction(total) / len(kept) * Fraction(formula.k)


def price_scores(method: Method, bidders: Iterable[Bidder]) -> tuple[Fraction, dict[str, Decimal]]:
    """The benchmark and each compliant bidder's rounded price score by the tender's formula."""
    valid = [b for b in bidders if b.compliant]
    benchmark = price_benchmark(method, [b.price for b in valid])
    weight = Fraction(method.price_weight)
    d = method.decimals
    scores: dict[str, Decimal] = {}
    if isinstance(method.price_formula, LowestPriceFormula):
        for b in valid:
            scores[b.id] = round_half_up(benchmark / Fraction(b.price) * weight, d)
    else:
        e = Fraction(method.price_formula.e)
        for b in valid:
            raw = weight - e * abs(Fraction(b.price) - benchmark) / benchmark * 100
            scores[b.id] = round_half_up(max(Fraction(0), raw), d)
    return benchmark, scores


def _evaluated_price(b: Bidder) -> Decimal:
    with _Exact():
        return sum((a.amount for a in b.adjustments), b.price)


# ---------------------------------------------------------------------------------------------------------
# Tie draws (§1 with the tied bidders as the candidates).

def tie_draw_input(draw_id: str, bidders: Iterable[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The §1 request and candidate list of a draw among tied bidders: one quota taking all of them, in order.

    Each bidder is its own "employer", so the one-per-employer rule never bites and every bidder is placed.
    """
    ids = sorted(set(bidders))
    request = {"draw_id": draw_id, "purpose": "tie_break",
               "quotas": [{"name": TIE_QUOTA, "count": len(ids), "backups": 0}]}
    cands = [{"id": i, "employer": i, "quotas": [TIE_QUOTA]} for i in ids]
    return request, cands


def check_tie_draw(record: Mapping[str, Any], bidders: Iterable[str]) -> tuple[str, ...]:
    """Recompute a tie draw's published record and return the drawn order; refuse any mismatch."""
    ids = sorted(set(bidders))

    def refuse(why: str) -> TieDrawMismatch:
        return TieDrawMismatch(f"the tie draw among {', '.join(ids)} does not check out: {why}",
                               details={"bidders": ids, "draw_id": str(record.get("draw_id"))[:100]})

    if not isinstance(record, Mapping) or record.get("algorithm") != randomness.ALGORITHM:
        raise refuse(f"it is not a {randomness.ALGORITHM} record")
    request, cands = record.get("request"), record.get("candidates")
    if (not isinstance(request, Mapping) or not isinstance(request.get("draw_id"), str)
            or request["draw_id"] != record.get("draw_id")):
        raise refuse("its request does not name the draw")
    expected_request, expected_cands = tie_draw_input(request["draw_id"], ids)
    if dict(request) != expected_request or cands != expected_cands:
        raise refuse("it is not a draw among exactly the tied bidders")
    try:
        secret = bytes.fromhex(record["secret"])
        entropy = record["entropy"]
        outcome = randomness.draw(secret, entropy, request, cands)
    except (KeyError, TypeError, ValueError) as err:
        raise refuse("its secret or entropy is missing or malformed") from err
    except Unprocessable as err:
        raise refuse(err.message) from err
    if record.get("commitment") != randomness.commitment(secret):
        raise refuse("the secret does not match the published commitment")
    if record.get("seed") != outcome.seed.hex():
        raise refuse("the seed does not recompute")
    if record.get("result") != outcome.result_json():
        raise refuse("the result does not recompute")
    return outcome.quota(TIE_QUOTA).primaries


TieDrawer = Callable[[int, tuple[str, ...]], Mapping[str, Any]]


def tie_drawer(secret: bytes, entropy: str, draw_id_prefix: str) -> TieDrawer:
    """A callback drawing lots for the n-th tie group with a committed secret and the supervisor's entropy."""

    def run(n: int, bidders: tuple[str, ...]) -> dict[str, Any]:
        request, cands = tie_draw_input(f"{draw_id_prefix}-tie-{n}", bidders)
        return randomness.verification_record(request=request, candidates=cands, secret=secret, entropy=entropy)

    return run


# ---------------------------------------------------------------------------------------------------------
# Ranking.

def _order_key(method: Method, line: RankedBid) -> tuple:
    if method.kind == LOWEST_PRICE:
        # ascending evaluated price, then the lower bid price
        return (line.evaluated_price, line.price)
    # descending total, then the lower price, then the higher technical score. (Equal prices get equal price
    # scores under either formula, so equal totals at an equal price mean equal technical scores: the third key
    # never decides on its own today, but it is the spec's order and stays in case a formula ever changes that.)
    return (-line.total, line.price, -line.technical)


def evaluate(data: ScoringInput, *, tie_draws: Sequence[Mapping[str, Any]] = (),
             draw_tie: TieDrawer | None = None) -> Evaluation:
    """Aggregate, price-score and rank the compliant bids; settle remaining ties by §1 draws.

    A group still tied after the ordered keys is settled by the record in `tie_draws` whose candidates are
    exactly that group, else by calling `draw_tie(n, bidders)` (n counts tie groups from 1 in ranking order).
    With neither, the group is left in `pending_ties`, its bidders sharing a rank and listed by id.
    """
    validate_input(data)
    method = data.method
    compliant = [b for b in data.bidders if b.compliant]
    benchmark: Fraction | None = None
    lines: list[RankedBid] = []
    if method.kind == LOWEST_PRICE:
        for b in compliant:
            lines.append(RankedBid(b.id, b.price, {}, None, None, None, _evaluated_price(b), 0))
    else:
        table = criterion_scores(data)
        benchmark, prices = price_scores(method, compliant)
        with _Exact():
            for b in compliant:
                row = table[b.id]
                technical = sum(row.values(), Decimal(0))
                lines.append(RankedBid(b.id, b.price, row, technical, prices[b.id], technical + prices[b.id],
                                       None, 0))
    lines.sort(key=lambda line: (_order_key(method, line), line.bidder))
    available = {_candidate_ids(r): r for r in tie_draws}
    if len(available) != len(tie_draws):
        raise TieDrawMismatch("two tie draws were given for the same bidders")
    used: list[dict[str, Any]] = []
    pending: list[TieGroup] = []
    ranked: list[RankedBid] = []
    i = 0
    groups = 0
    while i < len(lines):
        j = i + 1
        key = _order_key(method, lines[i])
        while j < len(lines) and _order_key(method, lines[j]) == key:
            j += 1
        group = lines[i:j]
        first_rank = i + 1
        if len(group) == 1:
            ranked.append(_with_rank(group[0], first_rank))
        else:
            groups += 1
            ids = tuple(sorted(line.bidder for line in group))
            record = available.pop(ids, None)
            if record is None and draw_tie is not None:
                record = draw_tie(groups, ids)
            if record is None:
                pending.append(TieGroup(ids, first_rank))
                ranked.extend(_with_rank(line, first_rank) for line in group)
            else:
                order = check_tie_draw(record, ids)
                by_id = {line.bidder: line for line in group}
                ranked.extend(_with_rank(by_id[b], first_rank + k) for k, b in enumerate(order))
                used.append(dict(record))
                log.debug("tie among %s settled by draw %s", ids, record.get("draw_id"))
        i = j
    if available:
        extra = sorted(available)
        raise TieDrawMismatch("a tie draw was given for bidders who are not tied",
                              details={"groups": [list(g) for g in extra]})
    return Evaluation(tuple(ranked), tuple(used), tuple(pending), benchmark)


def _candidate_ids(record: Mapping[str, Any]) -> tuple[str, ...]:
    cands = record.get("candidates") if isinstance(record, Mapping) else None
    if not isinstance(cands, list) or not all(isinstance(c, Mapping) and isinstance(c.get("id"), str)
                                              for c in cands):
        raise TieDrawMismatch("a tie draw record has no candidate list")
    return tuple(sorted(c["id"] for c in cands))


def _with_rank(line: RankedBid, rank: int) -> RankedBid:
    return RankedBid(line.bidder, line.price, line.criteria, line.technical, line.price_score, line.total,
                     line.evaluated_price, rank)


def candidates(evaluation: Evaluation, count: int = 3) -> tuple[str, ...]:
    """The recommended candidates (中标候选人), top `count` of a final ranking; refused while a tie is pending."""
    if not evaluation.final:
        raise Conflict("the ranking still has a tie to be settled by drawing lots", code="tie_draw_pending",
                       details={"groups": [list(g.bidders) for g in evaluation.pending_ties]})
    return tuple(line.bidder for line in evaluation.ranking[:count])
