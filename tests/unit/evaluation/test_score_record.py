"""The bidroom-score-v1 record: its exact shape, and an outsider's recomputation agreeing with it or not."""
import json
from decimal import Decimal as D

import pytest
from hypothesis import given, settings, strategies as st

from core.canonical import cj
from evaluation.score_record import RECORD_KEYS, build_record, parse_record, recompute, verify
from evaluation.scoring import Adjustment, MeanBenchmarkFormula, Method, ScoringInput, evaluate, tie_drawer
from tests.unit.evaluation.tables import bidders, comprehensive, members, scoring_input

SECRET = bytes(32)


def _data():
    method = comprehensive([("技术方案", "40", False), ("企业信誉", "10", True)], "50",
                           formula=MeanBenchmarkFormula(D("0.95"), D("1.5"), True), aggregation="trimmed_mean")
    bids = bidders(("B-1", "980000.00", True), ("B-2", "1000000.00", True), ("B-3", "1000000.00", True),
                   ("B-4", "1050000.00", True), ("B-5", "900000.00", True), ("B-9", "700000.00", False))
    table = {b: {"技术方案": "30 31 32 33 34 35 36", "企业信誉": "8 8 8 8 8 8 8"} for b in ("B-1", "B-4", "B-5")}
    # B-2 and B-3: the same price and the same trimmed means → a tie only a draw settles
    table["B-2"] = {"技术方案": "30 30 30 30 30 30 30", "企业信誉": "9 9 9 9 9 9 9"}
    table["B-3"] = {"技术方案": "20 30 30 30 30 30 40", "企业信誉": "9 9 9 9 9 9 9"}
    return scoring_input(method, members(7), bids, table)


def test_the_record_holds_exactly_the_published_fields_with_numbers_as_strings():
    data = _data()
    result = evaluate(data, draw_tie=tie_drawer(SECRET, "entropy-1", "EV-9"))
    record = build_record(data, result)
    assert set(record) == RECORD_KEYS and record["algorithm"] == "bidroom-score-v1"
    assert record["method"] == "comprehensive" and record["decimals"] == "2" and record["aggregation"] == "trimmed_mean"
    assert record["criteria"] == [{"name": "技术方案", "max": "40", "objective": False},
                                  {"name": "企业信誉", "max": "10", "objective": True}]
    assert record["price_weight"] == "50"
    assert record["price_formula"] == {"rule": "mean_benchmark", "k": "0.95", "e": "1.5", "drop_extremes": True}
    assert record["members"] == ["M1", "M2", "M3", "M4", "M5", "M6", "M7"]
    assert record["bidders"][-1] == {"id": "B-9", "price": "700000.00", "compliant": False, "adjustments": []}
    assert len(record["sheets"]) == 7 * 5
    assert record["sheets"][0] == {"member": "M1", "bidder": "B-1", "scores": {"技术方案": "30", "企业信誉": "8"}}
    assert [x["rank"] for x in record["ranking"]] == ["1", "2", "3", "4", "5"]
    assert all(set(x) == {"bidder", "criteria", "price_score", "total", "evaluated_price", "rank"}
               for x in record["ranking"])
    assert len(record["tie_draws"]) == 1
    # every number is a decimal string; only the embedded §1 draw record keeps its integer quota counts
    numbers = []
    json.loads(cj({**record, "tie_draws": []}), parse_int=numbers.append, parse_float=numbers.append)
    assert numbers == []
    assert record["tie_draws"][0]["request"]["quotas"] == [{"name": "tie", "count": 2, "backups": 0}]


def test_an_outsider_recomputes_the_published_ranking_from_the_record_alone():
    data = _data()
    record = build_record(data, evaluate(data, draw_tie=tie_drawer(SECRET, "entropy-1", "EV-9")))
    shipped = json.loads(cj(record).decode("utf-8"))     # what the outsider downloads
    assert recompute(shipped) == record["ranking"]
    assert verify(shipped) == []
    assert parse_record(shipped) == ScoringInput(data.method, data.members, data.bidders,
                                                 tuple(sorted(data.sheets, key=lambda s: (s.member, s.bidder))))


def test_a_changed_score_price_or_rank_is_caught_by_the_recomputation():
    data = _data()
    record = build_record(data, evaluate(data, draw_tie=tie_drawer(SECRET, "entropy-1", "EV-9")))
    # a published total nudged by a cent
    nudged = json.loads(json.dumps(record))
    nudged["ranking"][0]["total"] = str(D(nudged["ranking"][0]["total"]) + D("0.01"))
    assert len(verify(nudged)) == 1 and "total" in verify(nudged)[0]
    # a sheet altered after publication: the ranking line of that bidder no longer recomputes
    altered = json.loads(json.dumps(record))
    sheet = next(s for s in altered["sheets"] if s["bidder"] == "B-4" and s["member"] == "M4")
    sheet["scores"]["技术方案"] = "39"
    assert any("B-4" in problem for problem in verify(altered))
    # the tie draw's entropy swapped for a more convenient one
    redrawn = json.loads(json.dumps(record))
    redrawn["tie_draws"][0]["entropy"] = "entropy-2"
    assert verify(redrawn)[0].startswith("the record cannot be recomputed")
    # the tie draw removed
    undrawn = {**record, "tie_draws": []}
    assert "without its draw" in verify(undrawn)[0]
    # a float where a decimal string belongs
    floated = {**record, "price_weight": 50.0}
    assert verify(floated) != []


def test_the_lowest_evaluated_price_record_carries_the_adjustments_and_evaluated_prices():
    data = ScoringInput(Method.lowest_price(), members(5), bidders(
        ("B-A", "1000000.00", True, [Adjustment("工期延长", D("20000.00"))]),
        ("B-B", "1010000.00", True), ("B-R", "1.00", False)))
    record = build_record(data, evaluate(data))
    assert record["criteria"] == [] and record["sheets"] == [] and record["price_weight"] is None
    assert record["bidders"][0]["adjustments"] == [{"reason": "工期延长", "amount": "20000.00"}]
    assert record["ranking"] == [
        {"bidder": "B-B", "criteria": {}, "price_score": None, "total": None, "evaluated_price": "1010000.00",
         "rank": "1"},
        {"bidder": "B-A", "criteria": {}, "price_score": None, "total": None, "evaluated_price": "1020000.00",
         "rank": "2"}]
    assert verify(record) == []


def test_a_record_built_from_other_inputs_than_the_evaluation_is_refused():
    data = _data()
    result = evaluate(data, draw_tie=tie_drawer(SECRET, "entropy-1", "EV-9"))
    other = ScoringInput(data.method, data.members, data.bidders[:-2] + data.bidders[-1:],
                         tuple(s for s in data.sheets if s.bidder != "B-5"))
    with pytest.raises(ValueError):
        build_record(other, result)


def test_the_verify_command_says_ok_or_names_the_difference(tmp_path, capsys):
    from evaluation.score_verify import main

    data = _data()
    record = build_record(data, evaluate(data, draw_tie=tie_drawer(SECRET, "entropy-1", "EV-9")))
    good = tmp_path / "record.json"
    good.write_bytes(cj(record))
    assert main([str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    record["ranking"][1]["rank"] = "1"
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    assert main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "rank" in out
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert main([str(tmp_path / "broken.json")]) == 2


def test_bidroom_score_verify_runs_the_same_check(tmp_path, capsys):
    from web.cli import main as bidroom

    data = _data()
    record = build_record(data, evaluate(data, draw_tie=tie_drawer(SECRET, "entropy-1", "EV-9")))
    path = tmp_path / "record.json"
    path.write_bytes(cj(record))
    assert bidroom(["score", "verify", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
    record["ranking"][0]["total"] = "99.99"
    path.write_bytes(cj(record))
    assert bidroom(["score", "verify", str(path)]) == 1


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, path + (i,))
    yield path


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_any_corruption_of_a_record_gives_a_verdict_never_a_crash(data):
    base = _data()
    record = build_record(base, evaluate(base, draw_tie=tie_drawer(SECRET, "entropy-1", "EV-9")))
    paths = [p for p in _leaves(record) if p]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
                                st.sampled_from(["-1", "0", "1E+999999", "1E-999", "NaN", "99999999999999999", "7"]),
                                st.just([]), st.just({})))
    corrupted = json.loads(json.dumps(record))
    target = corrupted
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problems = verify(corrupted)
    assert isinstance(problems, list)
    if problems == []:
        # still consistent: what was published is exactly what the (changed) inputs give
        assert recompute(corrupted) == corrupted["ranking"]
