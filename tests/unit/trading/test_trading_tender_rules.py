"""Evaluation methods, document types by magic bytes, filenames and listing cursors."""
import pytest

from core.errors import BadRequest, Unprocessable, UnsupportedMediaType
from trading.tender_rules import Cursor, clean_filename, decode_cursor, encode_cursor, parse_evaluation, \
    sniff_document_type

SCORING = {"method": "comprehensive", "price_weight": "30", "criteria": [
    {"name": "技术方案", "max": "45.5", "objective": False}, {"name": "业绩", "max": "24.5", "objective": True}]}


def test_comprehensive_scoring_is_stored_with_decimal_strings_and_defaults():
    stored = parse_evaluation(SCORING)
    assert stored == {"method": "comprehensive", "criteria": [
        {"name": "技术方案", "max": "45.5", "objective": False}, {"name": "业绩", "max": "24.5", "objective": True}],
        "price_weight": "30", "price_formula": {"rule": "lowest_price"}, "aggregation": "mean", "decimals": 2}


def test_criteria_and_price_weight_must_make_exactly_100_points():
    with pytest.raises(Unprocessable) as err:
        parse_evaluation({**SCORING, "price_weight": "30.01"})
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
        parse_evaluation({**SCORING, **change})


def test_the_mean_benchmark_formula_keeps_its_k_e_and_extremes_flag():
    stored = parse_evaluation({**SCORING, "price_formula": {"rule": "mean_benchmark", "k": "0.95", "e": "1.5",
                                                            "drop_extremes": True}})
    assert stored["price_formula"] == {"rule": "mean_benchmark", "k": "0.95", "e": "1.5", "drop_extremes": True}


def test_lowest_evaluated_price_takes_nothing_else():
    assert parse_evaluation({"method": "lowest_price", "criteria": [1]}) == {"method": "lowest_price"}


@pytest.mark.parametrize("head, name, media", [
    (b"%PDF-1.4\n", "a.pdf", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "a.png", "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JF", "a.jpg", "image/jpeg"),
    (b"PK\x03\x04\x14\x00", "清单.XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (b"PK\x03\x04\x14\x00", "附件.zip", "application/zip"), (b"PK\x03\x04\x14\x00", "noext", "application/zip"),
])
def test_allowed_documents_are_recognised_by_their_first_bytes(head, name, media):
    assert sniff_document_type(head, name) == media


@pytest.mark.parametrize("head", [b"MZ\x90\x00", b"GIF89a", b"<html>", b"PK\x05\x06", b"", b"%PD"])
def test_anything_else_is_refused_whatever_its_name(head):
    with pytest.raises(UnsupportedMediaType) as err:
        sniff_document_type(head, "file.pdf")
    assert err.value.code == "unsupported_document_type"


def test_filenames_lose_their_directories_and_control_characters():
    assert clean_filename("C:\\Users\\王\\招标文件.pdf") == "招标文件.pdf"
    assert clean_filename("../../a\x00b.pdf") == "ab.pdf"
    for bad in (None, "", "  ", "dir/", ".."):
        with pytest.raises(BadRequest):
            clean_filename(bad)


def test_cursors_round_trip_and_refuse_tampering_or_another_sort():
    cursor = Cursor("deadline", "2026-03-22T01:00:00+00:00", 42)
    token = encode_cursor(cursor)
    assert decode_cursor(token, "deadline") == cursor
    with pytest.raises(BadRequest):
        decode_cursor(token, "published")
    for bad in ("", "!!!", encode_cursor(cursor)[:-3], "W1tdXQ"):
        with pytest.raises(BadRequest):
            decode_cursor(bad, "deadline")


def test_runs_of_three_or_more_chinese_characters_are_rechecked_as_phrases():
    from trading.tender_rules import cjk_phrases
    assert cjk_phrases("中山路 道路 ZFCG 医疗设备采购") == ["中山路", "医疗设备采购"]
    assert cjk_phrases("ab") == [] and cjk_phrases(None) == []
