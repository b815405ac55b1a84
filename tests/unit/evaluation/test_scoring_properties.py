"""Invariants of aggregation and ranking over random committees, bids and sheets (hypothesis)."""
import math
from decimal import Decimal as D
from fractions import Fraction as F

from hypothesis import given, settings, strategies as st

from evaluation.score_record import build_record, recompute
from evaluation.scoring import (
    Adjustment, Bidder, Criterion, LowestPriceFormula, MeanBenchmarkFormula, Method, ScoringInput, Sheet, evaluate,
    tie_drawer,
)

DRAW = tie_drawer(bytes(range(32)), "property-entropy", "EV-P")


@st.composite
def comprehensive_inputs(draw):
    decimals = draw(st.sampled_from([2, 3]))
    maxima = draw(st.lists(st.sampled_from(["5", "10", "12.5", "20", "40"]), min_size=1, max_size=4))
    criteria = tuple(Criterion(f"C{i}", D(m), draw(st.booleans())) for i, m in enumerate(maxima))
    if draw(st.booleans()):
        formula = LowestPriceFormula()
    else:
        formula = MeanBenchmarkFormula(D(draw(st.sampled_from(["0.90", "0.95", "1", "1.05"]))),
                                       D(draw(st.sampled_from(["0.5", "1", "2"]))), draw(st.booleans()))
    method = Method(criteria=criteria, price_weight=D(draw(st.sampled_from(["10", "30", "40"]))),
                    price_formula=formula, aggregation=draw(st.sampled_from(["mean", "trimmed_mean"])),
                    decimals=decimals)
    members = tuple(f"M{i}" for i in range(draw(st.sampled_from([1, 2, 3, 5, 6, 7, 8, 9]))))
    n_bidders = draw(st.sampled_from([1, 2, 3, 5, 6, 7]))
    # few distinct prices, coarse scores and bidders copying another's price and sheets, so that ties on total,
    # on price and those only a draw settles all actually happen
    prices = st.builds(lambda base, cents: D(base * 10000) + D(cents) / 100, st.integers(97, 103),
                       st.sampled_from([0, 0, 0, 1, 50]))
    bidders, rows = [], []
    for i in range(n_bidders):
        copy_of = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        compliant = i == 0 or draw(st.sampled_from([True, True, True, False]))
        if copy_of is not None:
            bidders.append(Bidder(f"B{i}", bidders[copy_of].price, compliant))
            rows.append(rows[copy_of])
            continue
        bidders.append(Bidder(f"B{i}", draw(prices), compliant))
        row = {}
        for m in members:
            scores = {}
            for c in criteria:
                hundredths = int(c.max * 100)
                scores[c.name] = draw(st.one_of(st.sampled_from([c.max, c.max / 2, c.max * 3 / 4]),
                                                st.integers(0, hundredths).map(lambda h: D(h) / 100)))
            row[m] = scores
        rows.append(row)
    bidders = tuple(bidders)
    sheets = [Sheet(m, b.id, rows[i][m]) for i, b in enumerate(bidders) if b.compliant for m in members]
    return ScoringInput(method, members, bidders, tuple(sheets))


def r(x: F, d: int) -> D:
    """Round half-up: floor(|x|·10^d + 1/2), sign restored."""
    q = math.floor(abs(x) * 10 ** d + F(1, 2))
    return D(q if x >= 0 else -q).scaleb(-d)


def spec_reading(data):
    """ALGORITHMS.md §2 read line by line with fractions: bidder → (criterion scores, price score, total)."""
    m, d, n = data.method, data.method.decimals, len(data.members)
    valid = [b for b in data.bidders if b.compliant]
    prices = sorted(F(b.price) for b in valid)
    if isinstance(m.price_formula, MeanBenchmarkFormula):
        kept = prices[1:-1] if m.price_formula.drop_extremes and len(prices) >= 5 else prices
        bench = sum(kept) / len(kept) * F(m.price_formula.k)
    out = {}
    for b in valid:
        crit = {}
        for c in m.criteria:
            xs = sorted(F(s.scores[c.name]) for s in data.sheets if s.bidder == b.id)
            if m.aggregation == "trimmed_mean" and n >= 7:
                xs = xs[1:-1]
            crit[c.name] = r(sum(xs) / len(xs), d)
        if isinstance(m.price_formula, LowestPriceFormula):
            ps = r(prices[0] / F(b.price) * F(m.price_weight), d)
        else:
            ps = r(max(F(0), F(m.price_weight) - F(m.price_formula.e) * abs(F(b.price) - bench) / bench * 100), d)
        out[b.id] = (crit, ps, sum(crit.values()) + ps)
    return out


@settings(max_examples=150, deadline=None)
@given(comprehensive_inputs())
def test_aggregation_equals_an_independent_reading_of_the_spec(data):
    expected = spec_reading(data)
    result = evaluate(data, draw_tie=DRAW)
    assert {x.bidder: (dict(x.criteria), x.price_score, x.total) for x in result.ranking} == expected
    # every value carries exactly the tender's decimals
    assert all(x.total.as_tuple().exponent == -data.method.decimals for x in result.ranking)


@settings(max_examples=100, deadline=None)
@given(comprehensive_inputs(), st.randoms(use_true_random=False))
def test_the_ranking_does_not_change_when_members_or_sheets_are_reordered(data, rng):
    members, sheets = list(data.members), list(data.sheets)
    rng.shuffle(members)
    rng.shuffle(sheets)
    shuffled = ScoringInput(data.method, tuple(members), data.bidders, tuple(sheets))
    assert evaluate(shuffled, draw_tie=DRAW) == evaluate(data, draw_tie=DRAW)


@settings(max_examples=100, deadline=None)
@given(comprehensive_inputs())
def test_every_ranked_bidder_passed_review_and_the_order_follows_the_tie_rules(data):
    result = evaluate(data, draw_tie=DRAW)
    compliant = {b.id for b in data.bidders if b.compliant}
    assert [x.bidder for x in result.ranking if x.bidder not in compliant] == []
    assert {x.bidder for x in result.ranking} == compliant
    assert [x.rank for x in result.ranking] == list(range(1, len(compliant) + 1))
    keys = [(-x.total, x.price, -x.technical) for x in result.ranking]
    assert keys == sorted(keys)
    # a draw was held exactly for each run of equal keys
    runs = sum(1 for i, k in enumerate(keys) if keys.count(k) > 1 and keys.index(k) == i)
    assert len(result.tie_draws) == runs


@settings(max_examples=60, deadline=None)
@given(comprehensive_inputs())
def test_the_published_record_recomputes_to_its_own_ranking(data):
    record = build_record(data, evaluate(data, draw_tie=DRAW))
    assert recompute(record) == record["ranking"]


@st.composite
def lowest_price_inputs(draw):
    amounts = st.sampled_from(["0", "1000.00", "-1000.00", "2500.50", "5000"]).map(D)
    bidders = tuple(Bidder(f"B{i}", D(draw(st.integers(95, 100))) * 10000, draw(st.booleans()) or i == 0,
                           tuple(Adjustment(f"调整{k}", draw(amounts)) for k in range(draw(st.integers(0, 3)))))
                    for i in range(draw(st.integers(1, 8))))
    return ScoringInput(Method.lowest_price(), ("M1", "M2", "M3"), bidders)


@settings(max_examples=150, deadline=None)
@given(lowest_price_inputs())
def test_lowest_evaluated_price_ranks_compliant_bids_by_price_plus_adjustments(data):
    result = evaluate(data, draw_tie=DRAW)
    by_id = {b.id: b for b in data.bidders}
    assert {x.bidder for x in result.ranking} == {b.id for b in data.bidders if b.compliant}
    for x in result.ranking:
        b = by_id[x.bidder]
        assert x.evaluated_price == b.price + sum(a.amount for a in b.adjustments)
    keys = [(x.evaluated_price, x.price) for x in result.ranking]
    assert keys == sorted(keys)
