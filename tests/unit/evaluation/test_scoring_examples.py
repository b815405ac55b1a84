"""Hand-worked scoring examples, ALGORITHMS.md §2: every expected cent is worked out in the comments."""
import hashlib
import json
from decimal import Decimal as D

import pytest

from evaluation.scoring import (
    Adjustment, MeanBenchmarkFormula, Method, ScoringInput, TieDrawMismatch, candidates, evaluate, tie_draw_input,
    tie_drawer,
)
from evaluation.score_record import build_record, verify
from evidence.randomness import verification_record
from tests.unit.evaluation.tables import bidders, comprehensive, line, members, scoring_input

# 技术方案 40 (subjective), 项目业绩 10 (objective), 售后服务 10 (subjective), price 40 points.
CRITERIA = [("技术方案", "40", False), ("项目业绩", "10", True), ("售后服务", "10", False)]


def test_five_members_mean_and_lowest_price_rule_to_the_cent():
    method = comprehensive(CRITERIA, "40")
    bids = bidders(("B-A", "1220000.00", True), ("B-B", "1280000.00", True), ("B-C", "1250000.00", True),
                   ("B-R", "1100000.00", False))   # rejected in review: cheapest, but never the benchmark
    table = {
        # 技术方案 30+32+31+29+33.5 = 155.5, /5 = 31.1 → 31.10
        # 项目业绩 8 × 5 → 8.00;  售后服务 7+8+7.5+8+7 = 37.5, /5 = 7.5 → 7.50
        "B-A": {"技术方案": "30 32 31 29 33.5", "项目业绩": "8 8 8 8 8", "售后服务": "7 8 7.5 8 7"},
        # 技术方案 36+35+37+36.5+35 = 179.5, /5 = 35.9 → 35.90;  项目业绩 10.00;  售后服务 45/5 → 9.00
        "B-B": {"技术方案": "36 35 37 36.5 35", "项目业绩": "10 10 10 10 10", "售后服务": "9 9 8.5 9 9.5"},
        # 技术方案 33+34+33.33+35+34 = 169.33, /5 = 33.866 → 33.87;  项目业绩 9.00
        # 售后服务 8+8.33+8+8+8 = 40.33, /5 = 8.066 → 8.07
        "B-C": {"技术方案": "33 34 33.33 35 34", "项目业绩": "9 9 9 9 9", "售后服务": "8 8.33 8 8 8"},
    }
    result = evaluate(scoring_input(method, members(5), bids, table))
    # benchmark = lowest compliant price 1,220,000 (B-R's 1,100,000 does not count)
    # B-A: 1220000/1220000 × 40 = 40.00
    # B-B: 1220000/1280000 × 40 = 61/64 × 40 = 38.125 → 38.13 (half-up; half-even would say 38.12)
    # B-C: 1220000/1250000 × 40 = 0.976 × 40 = 39.04
    # totals: B-A 31.10 + 8.00 + 7.50 = 46.60, + 40.00 = 86.60
    #         B-B 35.90 + 10.00 + 9.00 = 54.90, + 38.13 = 93.03
    #         B-C 33.87 + 9.00 + 8.07 = 50.94, + 39.04 = 89.98
    #         (rounding the exact sum 33.866 + 9 + 8.066 = 50.932 would give 50.93: the spec sums rounded scores)
    assert result.benchmark == 1220000
    a, b, c = line(result, "B-A"), line(result, "B-B"), line(result, "B-C")
    assert a.criteria == {"技术方案": D("31.10"), "项目业绩": D("8.00"), "售后服务": D("7.50")}
    assert c.criteria == {"技术方案": D("33.87"), "项目业绩": D("9.00"), "售后服务": D("8.07")}
    assert (a.price_score, b.price_score, c.price_score) == (D("40.00"), D("38.13"), D("39.04"))
    assert (a.technical, b.technical, c.technical) == (D("46.60"), D("54.90"), D("50.94"))
    assert [(x.bidder, str(x.total), x.rank) for x in result.ranking] == [
        ("B-B", "93.03", 1), ("B-C", "89.98", 2), ("B-A", "86.60", 3)]
    assert candidates(result) == ("B-B", "B-C", "B-A")


SEVEN = {
    # 技术方案 38 38 30 31 32 33 25: trimmed drops one 38 and the 25 → 38+30+31+32+33 = 164, /5 = 32.80
    #                                plain mean 227/7 = 32.428571… → 32.43
    # 商务 15 16 17 18 19 14 12.5:  trimmed drops 19 and 12.5 → 80/5 = 16.00; plain 111.5/7 = 15.928571… → 15.93
    "B-X": {"技术方案": "38 38 30 31 32 33 25", "商务": "15 16 17 18 19 14 12.5"},
    # 技术方案 36 35 34 33 39 37 20: trimmed drops 39 and 20 → 175/5 = 35.00; plain 234/7 = 33.428571… → 33.43
    # 商务 18 × 7 → 18.00 either way
    "B-Y": {"技术方案": "36 35 34 33 39 37 20", "商务": "18 18 18 18 18 18 18"},
}
SEVEN_CRITERIA = [("技术方案", "40", False), ("商务", "20", False)]
# price 40 points, lowest-price rule: B-X 1,000,000 → 40.00; B-Y 1,100,000 → 1000000/1100000 × 40 = 36.3636… → 36.36
SEVEN_BIDS = bidders(("B-X", "1000000.00", True), ("B-Y", "1100000.00", True))


def test_seven_members_trimmed_mean_drops_one_highest_and_one_lowest():
    result = evaluate(scoring_input(comprehensive(SEVEN_CRITERIA, "40", aggregation="trimmed_mean"), members(7),
                                    SEVEN_BIDS, SEVEN))
    # B-X 32.80 + 16.00 + 40.00 = 88.80;  B-Y 35.00 + 18.00 + 36.36 = 89.36 → B-Y first
    assert line(result, "B-X").criteria == {"技术方案": D("32.80"), "商务": D("16.00")}
    assert line(result, "B-Y").criteria == {"技术方案": D("35.00"), "商务": D("18.00")}
    assert [(x.bidder, str(x.total)) for x in result.ranking] == [("B-Y", "89.36"), ("B-X", "88.80")]


def test_seven_members_plain_mean_keeps_every_score():
    result = evaluate(scoring_input(comprehensive(SEVEN_CRITERIA, "40"), members(7), SEVEN_BIDS, SEVEN))
    # B-X 32.43 + 15.93 + 40.00 = 88.36;  B-Y 33.43 + 18.00 + 36.36 = 87.79 → the order flips back to B-X
    assert line(result, "B-X").criteria == {"技术方案": D("32.43"), "商务": D("15.93")}
    assert [(x.bidder, str(x.total)) for x in result.ranking] == [("B-X", "88.36"), ("B-Y", "87.79")]


def test_trimmed_mean_asked_for_with_five_members_is_the_plain_mean():
    five = {b: {c: " ".join(s.split()[:5]) for c, s in row.items()} for b, row in SEVEN.items()}
    trimmed = evaluate(scoring_input(comprehensive(SEVEN_CRITERIA, "40", aggregation="trimmed_mean"), members(5),
                                     SEVEN_BIDS, five))
    plain = evaluate(scoring_input(comprehensive(SEVEN_CRITERIA, "40"), members(5), SEVEN_BIDS, five))
    # B-X 技术方案 38+38+30+31+32 = 169, /5 = 33.80; 商务 85/5 = 17.00 → 33.80 + 17.00 + 40.00 = 90.80
    # B-Y 技术方案 36+35+34+33+39 = 177, /5 = 35.40; 商务 18.00 → 35.40 + 18.00 + 36.36 = 89.76
    assert trimmed.ranking == plain.ranking
    assert [(x.bidder, str(x.total)) for x in trimmed.ranking] == [("B-X", "90.80"), ("B-Y", "89.76")]


def test_rounding_is_half_up_at_the_tenders_decimals():
    one = [("技术", "60", False)]
    bids = bidders(("B-1", "100.00", True))
    # two members, 10.00 and 10.01: mean 10.005 → 10.01 with 2 decimals (half-even would keep 10.00)
    two = evaluate(scoring_input(comprehensive(one, "40"), members(2), bids, {"B-1": {"技术": "10.00 10.01"}}))
    assert line(two, "B-1").criteria["技术"] == D("10.01")
    # with 3 decimals: 1.000 and 1.001 → 1.0005 → 1.001; three members 10 10 10.01 → 10.00333… → 10.003
    three = comprehensive(one, "40", decimals=3)
    assert line(evaluate(scoring_input(three, members(2), bids, {"B-1": {"技术": "1.000 1.001"}})),
                "B-1").criteria["技术"] == D("1.001")
    got = evaluate(scoring_input(three, members(3), bids, {"B-1": {"技术": "10 10 10.01"}}))
    assert str(line(got, "B-1").criteria["技术"]) == "10.003"
    assert str(line(got, "B-1").price_score) == "40.000"


def _flat(bids, score="50"):
    """Every member gives every bidder the same single score, so only the price score tells bids apart."""
    return {b.id: {"技术": " ".join([score] * 3)} for b in bids if b.compliant}


def test_mean_benchmark_with_five_valid_prices_drops_the_extremes():
    formula = MeanBenchmarkFormula(k=D("0.95"), e=D("1"), drop_extremes=True)
    method = comprehensive([("技术", "70", False)], "30", formula=formula)
    bids = bidders(("P1", "900000", True), ("P2", "980000", True), ("P3", "1000000", True), ("P4", "1020000", True),
                   ("P5", "1300000", True), ("REJ", "500000", False))
    result = evaluate(scoring_input(method, members(3), bids, _flat(bids)))
    # 5 valid prices (the rejected 500,000 is not one), so 900,000 and 1,300,000 are dropped before the mean:
    # (980,000 + 1,000,000 + 1,020,000) / 3 = 1,000,000; B = 1,000,000 × 0.95 = 950,000.
    # (Counting the rejected bid would drop 500,000 and 1,300,000 and give B = 975,000 × 0.95.)
    assert result.benchmark == 950000
    # score = 30 − 1 × |p − B| / B × 100:
    #   P1 900,000:   50,000/950,000 = 5.263157…% → 24.736842… → 24.74
    #   P2 980,000:   30,000/950,000 = 3.157894…% → 26.842105… → 26.84
    #   P3 1,000,000: 50,000/950,000 = 5.263157…% → 24.74 (above or below the benchmark alike)
    #   P4 1,020,000: 70,000/950,000 = 7.368421…% → 22.631578… → 22.63
    #   P5 1,300,000: 350,000/950,000 = 36.84…% → 30 − 36.84 < 0 → floor 0.00
    assert {x.bidder: str(x.price_score) for x in result.ranking} == {
        "P1": "24.74", "P2": "26.84", "P3": "24.74", "P4": "22.63", "P5": "0.00"}
    # technical 50.00 each, so the totals follow: P2 76.84, then P1 and P3 tied at 74.74 → lower price P1 first
    assert [(x.bidder, str(x.total), x.rank) for x in result.ranking] == [
        ("P2", "76.84", 1), ("P1", "74.74", 2), ("P3", "74.74", 3), ("P4", "72.63", 4), ("P5", "50.00", 5)]


def test_mean_benchmark_with_four_valid_prices_keeps_them_all():
    formula = MeanBenchmarkFormula(k=D("1"), e=D("0.5"), drop_extremes=True)
    method = comprehensive([("技术", "70", False)], "30", formula=formula)
    bids = bidders(("Q1", "900000", True), ("Q2", "1000000", True), ("Q3", "1050000", True), ("Q4", "1250000", True))
    result = evaluate(scoring_input(method, members(3), bids, _flat(bids)))
    # only 4 valid prices: nothing is dropped. B = (900,000 + 1,000,000 + 1,050,000 + 1,250,000)/4 × 1 = 1,050,000
    # (dropping would have given (1,000,000 + 1,050,000)/2 = 1,025,000)
    assert result.benchmark == 1050000
    # score = 30 − 0.5 × |p − B| / B × 100:
    #   Q1: 150,000/1,050,000 = 14.285714…% × 0.5 = 7.142857… → 22.857142… → 22.86
    #   Q2:  50,000/1,050,000 =  4.761904…% × 0.5 = 2.380952… → 27.619047… → 27.62
    #   Q3: on the benchmark → 30.00
    #   Q4: 200,000/1,050,000 = 19.047619…% × 0.5 = 9.523809… → 20.476190… → 20.48
    assert {x.bidder: str(x.price_score) for x in result.ranking} == {
        "Q1": "22.86", "Q2": "27.62", "Q3": "30.00", "Q4": "20.48"}


def test_mean_benchmark_without_dropping_uses_every_valid_price():
    formula = MeanBenchmarkFormula(k=D("0.95"), e=D("1"), drop_extremes=False)
    method = comprehensive([("技术", "70", False)], "30", formula=formula)
    bids = bidders(("P1", "900000", True), ("P2", "980000", True), ("P3", "1000000", True), ("P4", "1020000", True),
                   ("P5", "1300000", True))
    result = evaluate(scoring_input(method, members(3), bids, _flat(bids)))
    # mean of all five = 5,200,000/5 = 1,040,000; B = 988,000
    # P2 980,000: 8,000/988,000 = 0.809716…% → 29.190283… → 29.19
    # P5 1,300,000: 312,000/988,000 = 31.578947…% → floor 0.00
    assert result.benchmark == 988000
    assert str(line(result, "P2").price_score) == "29.19"
    assert str(line(result, "P5").price_score) == "0.00"


def test_equal_totals_go_to_the_lower_price():
    method = comprehensive([("技术", "70", False)], "30")
    bids = bidders(("CHEAP", "1000000", True), ("DEAR", "1200000", True))
    # CHEAP: technical 60.00, price 30.00 → 90.00
    # DEAR:  technical 65.00, price 1,000,000/1,200,000 × 30 = 25.00 → 90.00: equal totals, CHEAP bid less
    result = evaluate(scoring_input(method, members(5), bids,
                                    {"CHEAP": {"技术": "60 60 60 60 60"}, "DEAR": {"技术": "65 65 65 65 65"}}))
    assert [(x.bidder, str(x.total), x.rank) for x in result.ranking] == [("CHEAP", "90.00", 1), ("DEAR", "90.00", 2)]
    assert result.final and result.tie_draws == ()


SECRET = bytes(range(32))
ENTROPY = "9f1c2a7e3b6d4c58a0e1f2d3c4b5a697"


def _drawn_order(draw_id, ids):
    """§1 steps 3-4 written out with hashlib alone: the order a draw among `ids` must give."""
    cj = lambda x: json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()  # noqa: E731
    request = {"draw_id": draw_id, "purpose": "tie_break", "quotas": [{"name": "tie", "count": len(ids), "backups": 0}]}
    cands = [{"id": i, "employer": i, "quotas": ["tie"]} for i in sorted(ids)]
    seed = hashlib.sha256(SECRET + ENTROPY.encode() + cj(request) + hashlib.sha256(cj(cands)).digest()).digest()
    return sorted(ids, key=lambda i: hashlib.sha256(seed + i.encode()).digest())


def _three_way_tie():
    # T1, T2, T3 bid the same price with the same scores: equal total (50.00 + 30.00), equal price, and so equal
    # technical score (equal prices always get equal price scores) → only a draw can order them.
    # LEAD scores 60 → 90.00 ahead of them; REJ was rejected.
    method = comprehensive([("技术", "70", False)], "30")
    bids = bidders(("T3", "800000", True), ("T1", "800000", True), ("LEAD", "800000", True), ("T2", "800000", True),
                   ("REJ", "700000", False))
    table = {"T1": {"技术": "50 50 50"}, "T2": {"技术": "50 50 50"}, "T3": {"技术": "50 49 51"},
             "LEAD": {"技术": "60 60 60"}}
    return scoring_input(method, members(3), bids, table)


def test_a_tie_on_total_price_and_technical_score_is_settled_by_a_verifiable_draw():
    data = _three_way_tie()
    result = evaluate(data, draw_tie=tie_drawer(SECRET, ENTROPY, "EV-1"))
    order = _drawn_order("EV-1-tie-1", ["T1", "T2", "T3"])
    assert [(x.bidder, x.rank) for x in result.ranking] == [("LEAD", 1)] + [(b, k) for k, b in enumerate(order, 2)]
    (record,) = result.tie_draws
    assert record["algorithm"] == "bidroom-draw-v1" and record["draw_id"] == "EV-1-tie-1"
    assert [c["id"] for c in record["candidates"]] == ["T1", "T2", "T3"]
    assert record["result"] == [{"quota": "tie", "primaries": order, "backups": []}]
    # the same record given back (as an outsider would) orders the tie the same way
    assert evaluate(data, tie_draws=[record]).ranking == result.ranking


def test_an_unsettled_tie_shares_its_rank_and_blocks_candidates_and_the_record():
    data = _three_way_tie()
    result = evaluate(data)
    assert not result.final
    assert [g.bidders for g in result.pending_ties] == [("T1", "T2", "T3")]
    assert [(x.bidder, x.rank) for x in result.ranking] == [("LEAD", 1), ("T1", 2), ("T2", 2), ("T3", 2)]
    with pytest.raises(Exception) as refused:
        candidates(result)
    assert refused.value.code == "tie_draw_pending"
    with pytest.raises(TieDrawMismatch) as refused:
        build_record(data, result)
    assert refused.value.code == "tie_draw_pending"


def test_a_tie_draw_that_does_not_recompute_or_covers_other_bidders_is_refused():
    data = _three_way_tie()
    record = evaluate(data, draw_tie=tie_drawer(SECRET, ENTROPY, "EV-1")).tie_draws[0]
    tampered = {**record, "entropy": "something else"}
    with pytest.raises(TieDrawMismatch):
        evaluate(data, tie_draws=[tampered])
    request, cands = tie_draw_input("EV-1-tie-1", ["T1", "T2"])
    partial = verification_record(request=request, candidates=cands, secret=SECRET, entropy=ENTROPY)
    with pytest.raises(TieDrawMismatch):
        evaluate(data, tie_draws=[partial])


def test_lowest_evaluated_price_orders_by_price_plus_adjustments_then_bid_price():
    data = ScoringInput(Method.lowest_price(), members(5), bidders(
        # 1,000,000 + 20,000 (工期延长) − 5,000 (付款条件优惠) = 1,015,000
        ("B-A", "1000000.00", True, [Adjustment("工期延长", D("20000.00")), Adjustment("付款条件优惠", D("-5000.00"))]),
        # 1,010,000 + 5,000 (缺项补齐) = 1,015,000: ties B-A, but bid 10,000 more
        ("B-B", "1010000.00", True, [Adjustment("缺项补齐", D("5000.00"))]),
        # 990,000 + 30,000 (质保期不足) = 1,020,000: cheapest bid, but evaluated dearest
        ("B-C", "990000.00", True, [Adjustment("质保期不足", D("30000.00"))]),
        # 1,015,000 with no adjustment: ties B-A and B-B, the dearest bid of the three
        ("B-E", "1015000.00", True),
        ("B-R", "900000.00", False)))                       # rejected: not ranked at all
    result = evaluate(data)
    assert [(x.bidder, str(x.evaluated_price), x.rank) for x in result.ranking] == [
        ("B-A", "1015000.00", 1), ("B-B", "1015000.00", 2), ("B-E", "1015000.00", 3), ("B-C", "1020000.00", 4)]
    assert all(x.total is None and x.price_score is None and x.criteria == {} for x in result.ranking)
    assert candidates(result) == ("B-A", "B-B", "B-E")


def test_lowest_evaluated_price_tie_on_both_prices_goes_to_a_draw():
    data = ScoringInput(Method.lowest_price(), members(5), bidders(
        ("L1", "500000.00", True, [Adjustment("工期", D("1000.00"))]),
        ("L2", "500000.00", True, [Adjustment("工期", D("1000.00"))])))
    result = evaluate(data, draw_tie=tie_drawer(SECRET, ENTROPY, "EV-2"))
    assert [x.bidder for x in result.ranking] == _drawn_order("EV-2-tie-1", ["L1", "L2"])
    assert verify(build_record(data, result)) == []
