"""The evaluation verification record ("bidroom-score-v1", ALGORITHMS.md §2) and its recomputation. Pure.

Each closed evaluation publishes this JSON object, attached to the report PDF as `record.json`. An outsider
recomputes the ranking from it alone: `recompute(record)` is that outsider's procedure, and `verify(record)`
says OK (an empty list) or what differs. Every number in the record is a decimal string.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from core.canonical import cj
from core.errors import DomainError
from evaluation.scoring import (
    LOWEST_PRICE, Adjustment, Bidder, Evaluation, Method, ScoringInput, ScoringInputError, Sheet, TieDrawMismatch,
    _dec, decimal_str, evaluate,
)

log = logging.getLogger(__name__)

__all__ = ["ALGORITHM", "RECORD_KEYS", "build_record", "parse_record", "recompute", "verify"]

ALGORITHM = "bidroom-score-v1"
RECORD_KEYS = frozenset({"algorithm", "method", "decimals", "criteria", "price_weight", "price_formula",
                         "aggregation", "members", "bidders", "sheets", "ranking", "tie_draws"})


def build_record(data: ScoringInput, evaluation: Evaluation) -> dict[str, Any]:
    """The published record of a final evaluation; refused if the evaluation is not what the inputs give."""
    if not evaluation.final:
        raise TieDrawMismatch("a tie still waits for its draw; the record is published once it is settled",
                              code="tie_draw_pending",
                              details={"groups": [list(g.bidders) for g in evaluation.pending_ties]})
    again = evaluate(data, tie_draws=evaluation.tie_draws)
    if again.ranking != evaluation.ranking:
        raise ValueError("the evaluation was not computed from these inputs")
    method = data.method
    member_order = {m: i for i, m in enumerate(data.members)}
    bidder_order = {b.id: i for i, b in enumerate(data.bidders)}
    sheets = sorted(data.sheets, key=lambda s: (member_order[s.member], bidder_order[s.bidder]))
    criteria = [c.name for c in method.criteria]
    record = {
        "algorithm": ALGORITHM,
        **method.to_json(),
        "members": list(data.members),
        "bidders": [{"id": b.id, "price": decimal_str(b.price), "compliant": b.compliant,
                     "adjustments": [{"reason": a.reason, "amount": decimal_str(a.amount)} for a in b.adjustments]}
                    for b in data.bidders],
        "sheets": [{"member": s.member, "bidder": s.bidder,
                    "scores": {name: decimal_str(s.scores[name]) for name in criteria}} for s in sheets],
        "ranking": [line.to_json() for line in evaluation.ranking],
        "tie_draws": [dict(r) for r in evaluation.tie_draws],
    }
    # canonical round trip: no float slipped in, and the record shares no mutable object with the caller
    return json.loads(cj(record))


def _list(record: Mapping[str, Any], key: str) -> list[Any]:
    value = record.get(key)
    if not isinstance(value, list):
        raise ScoringInputError(f"the record's {key} must be a list", details={"field": key})
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ScoringInputError(f"{where} must be a non-empty string", details={"field": where})
    return value


def parse_record(record: Mapping[str, Any]) -> ScoringInput:
    """The scoring inputs a published record holds; anything malformed is refused, floats included."""
    if not isinstance(record, Mapping) or record.get("algorithm") != ALGORITHM:
        raise ScoringInputError(f"this is not a {ALGORITHM} record", details={"field": "algorithm"})
    if set(record) != RECORD_KEYS:
        raise ScoringInputError("the record's fields are not those of the algorithm",
                                details={"missing": sorted(RECORD_KEYS - set(record)),
                                         "unexpected": sorted(set(record) - RECORD_KEYS)})
    if not isinstance(record.get("decimals"), str):
        raise ScoringInputError("decimals is a decimal string", details={"field": "decimals"})
    method = Method.from_json(record)
    if method.kind == LOWEST_PRICE and (record["criteria"] or record["price_weight"] is not None
                                        or record["price_formula"] is not None or record["aggregation"] is not None):
        raise ScoringInputError("the lowest evaluated price method has no criteria, weight, formula or aggregation")
    members = tuple(_text(m, "members[]") for m in _list(record, "members"))
    bidders = []
    for i, b in enumerate(_list(record, "bidders")):
        where = f"bidders[{i}]"
        if not isinstance(b, Mapping) or set(b) != {"id", "price", "compliant", "adjustments"}:
            raise ScoringInputError(f"{where} has id, price, compliant and adjustments", details={"field": where})
        if not isinstance(b["compliant"], bool):
            raise ScoringInputError(f"{where}.compliant is true or false", details={"field": where})
        adjustments = []
        for k, a in enumerate(_list(b, "adjustments")):
            if not isinstance(a, Mapping) or set(a) != {"reason", "amount"} or not isinstance(a["reason"], str):
                raise ScoringInputError(f"{where}.adjustments[{k}] has a reason and an amount",
                                        details={"field": where})
            adjustments.append(Adjustment(a["reason"], _dec(a["amount"], f"{where}.adjustments[{k}].amount")))
        bidders.append(Bidder(_text(b["id"], f"{where}.id"), _dec(b["price"], f"{where}.price"), b["compliant"],
                              tuple(adjustments)))
    sheets = []
    for i, s in enumerate(_list(record, "sheets")):
        where = f"sheets[{i}]"
        if (not isinstance(s, Mapping) or set(s) != {"member", "bidder", "scores"}
                or not isinstance(s["scores"], Mapping)):
            raise ScoringInputError(f"{where} has member, bidder and scores", details={"field": where})
        scores = {_text(k, f"{where}.scores"): _dec(v, f"{where}.scores.{k}") for k, v in s["scores"].items()}
        sheets.append(Sheet(_text(s["member"], f"{where}.member"), _text(s["bidder"], f"{where}.bidder"), scores))
    return ScoringInput(method, members, tuple(bidders), tuple(sheets))


def recompute(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ranking, recomputed from the record's inputs and tie draws alone, in the record's JSON form."""
    data = parse_record(record)
    evaluation = evaluate(data, tie_draws=_list(record, "tie_draws"))
    if not evaluation.final:
        raise TieDrawMismatch("the record leaves a tie without its draw",
                              details={"groups": [list(g.bidders) for g in evaluation.pending_ties]})
    return [line.to_json() for line in evaluation.ranking]


def verify(record: Mapping[str, Any]) -> list[str]:
    """What differs between the published ranking and its recomputation; empty when the record checks out."""
    try:
        ranking = recompute(record)
    except DomainError as err:   # malformed, incomplete, out of range, or a tie draw that does not check out
        return [f"the record cannot be recomputed: {err.message}"]
    published = record.get("ranking")
    if not isinstance(published, list):
        return ["the record has no ranking list"]
    problems = []
    if len(published) != len(ranking):
        problems.append(f"the ranking lists {len(published)} bidders; the recomputation ranks {len(ranking)}")
    for n, (mine, theirs) in enumerate(zip(ranking, published), start=1):
        if mine != theirs:
            fields = sorted(k for k in set(mine) | set(theirs if isinstance(theirs, Mapping) else {})
                            if not isinstance(theirs, Mapping) or mine.get(k) != theirs.get(k))
            problems.append(f"line {n} ({mine['bidder']}): {', '.join(fields)} differ(s); "
                            f"recomputed {json.dumps({k: mine.get(k) for k in fields}, ensure_ascii=False)}")
    return problems
