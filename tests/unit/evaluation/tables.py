"""Builders for scoring inputs written as tables, so each test reads like the score sheets it describes."""
from decimal import Decimal as D

from evaluation.scoring import Bidder, Criterion, LowestPriceFormula, Method, ScoringInput, Sheet


def members(n):
    """Committee member ids M1..Mn."""
    return tuple(f"M{i}" for i in range(1, n + 1))


def sheets_from(table, committee):
    """{bidder: {criterion: "s1 s2 ... sn"}} → one Sheet per member and bidder, scores by member order."""
    out = []
    for bidder, row in table.items():
        columns = {name: [D(x) for x in scores.split()] for name, scores in row.items()}
        for k, member in enumerate(committee):
            out.append(Sheet(member, bidder, {name: values[k] for name, values in columns.items()}))
    return tuple(out)


def comprehensive(criteria, price_weight, formula=LowestPriceFormula(), aggregation="mean", decimals=2):
    """A comprehensive-scoring method from (name, max, objective) triples."""
    return Method(criteria=tuple(Criterion(n, D(m), o) for n, m, o in criteria), price_weight=D(price_weight),
                  price_formula=formula, aggregation=aggregation, decimals=decimals)


def bidders(*rows):
    """(id, price, compliant[, adjustments]) rows → Bidder tuple."""
    return tuple(Bidder(r[0], D(r[1]), r[2], tuple(r[3]) if len(r) > 3 else ()) for r in rows)


def scoring_input(method, committee, bids, table):
    return ScoringInput(method, committee, bids, sheets_from(table, committee))


def line(evaluation, bidder):
    """The ranking line of one bidder."""
    return next(x for x in evaluation.ranking if x.bidder == bidder)
