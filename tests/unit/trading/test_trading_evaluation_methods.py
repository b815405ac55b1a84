"""Evaluation methods (评标办法) as pydantic models: the stored form, the checks and their error codes, OpenAPI."""
import pytest

from core.errors import Unprocessable
from trading.evaluation_methods import ComprehensiveScoring, MeanBenchmark, parse_evaluation, stored_evaluation
from trading.schemas import TenderIn

SCORING = {"method": "comprehensive", "price_weight": "30", "criteria": [
    {"name": "技术方案", "max": "45.5", "objective": False}, {"name": "业绩", "max": "24.5", "objective": True}]}


def test_comprehensive_scoring_is_stored_with_decimal_strings_and_defaults():
    stored = stored_evaluation(SCORING)
    assert stored == {"method": "comprehensive", "criteria": [
        {"name": "技术方案", "max": "45.5", "objective": False}, {"name": "业绩", "max": "24.5", "objective": True}],
        "price_weight": "30", "price_formula": {"rule": "lowest_price"}, "aggregation": "mean", "decimals": 2}


def test_criteria_and_price_weight_must_make_exactly_100_points():
    with pytest.raises(Unprocessable) as err:
        stored_evaluation({**SCORING, "price_weight": "30.01"})
    assert err.value.code == "evaluation_total_not_100"
    assert err.value.details["total"] == "100.01"


@pytest.mark.parametrize("change", [
    {"criteria": []}, {"criteria": [{"name": "", "max": "70"}]},
    {"criteria": [{"name": "a", "max": "35"}, {"name": "a", "max": "35"}]},
    {"criteria": [{"name": "a", "max": 70.0}]}, {"criteria": [{"name": "a", "max": "70", "objective": "yes"}]},
    {"price_weight": "0", "criteria": [{"name": "a", "max": "100"}]}, {"price_weight": "abc"},
    {"price_formula": {"rule": "mean_benchmark", "k": "0.5", "e": "1"}},
    {"price_formula": {"rule": "mean_benchmark", "k": "1", "e": "0"}}, {"price_formula": {"rule": "magic"}},
    {"aggregation": "median"}, {"decimals": 4},
])
def test_malformed_evaluation_methods_are_refused(change):
    with pytest.raises(Unprocessable):
        stored_evaluation({**SCORING, **change})


def test_the_mean_benchmark_formula_keeps_its_k_e_and_extremes_flag():
    stored = stored_evaluation({**SCORING, "price_formula": {"rule": "mean_benchmark", "k": "0.95", "e": "1.5",
                                                            "drop_extremes": True}})
    assert stored["price_formula"] == {"rule": "mean_benchmark", "k": "0.95", "e": "1.5", "drop_extremes": True}


def test_lowest_evaluated_price_takes_nothing_else():
    assert stored_evaluation({"method": "lowest_price", "criteria": [1]}) == {"method": "lowest_price"}


@pytest.mark.parametrize("change, field", [
    ({"criteria": [{"name": "技术", "max": "-60"}]}, "evaluation.criteria.0.max"),
    ({"price_formula": {"rule": "mean_benchmark", "k": "2", "e": "1"}}, "evaluation.price_formula.k"),
    ({"method": "guesswork"}, "evaluation"),
])
def test_a_refusal_names_the_field_without_the_union_tags(change, field):
    with pytest.raises(Unprocessable) as err:
        parse_evaluation({**SCORING, **change})
    assert err.value.code == "invalid_evaluation" and err.value.details["field"] == field


def test_the_method_and_price_formula_are_typed_models():
    method = parse_evaluation({**SCORING, "price_formula": {"rule": "mean_benchmark", "e": "2"}})
    assert isinstance(method, ComprehensiveScoring) and isinstance(method.price_formula, MeanBenchmark)
    assert str(method.price_formula.k) == "1" and method.criteria[1].objective is True


def test_openapi_documents_both_methods_and_both_price_formulas():
    schema = TenderIn.model_json_schema()
    text = str(schema)
    for shape in ("ComprehensiveScoring", "LowestEvaluatedPrice", "LowestPriceBenchmark", "MeanBenchmark"):
        assert shape in schema["$defs"], shape
    assert "'propertyName': 'method'" in text and "'propertyName': 'rule'" in text
