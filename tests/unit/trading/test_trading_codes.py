"""Trading categories and tender codes."""
import pytest
from hypothesis import given, strategies as st

from core.errors import NotFound, Unprocessable
from trading.codes import load_categories, parse_catalogue, tender_code


def test_catalogue_has_the_four_trading_families_and_27_subtypes():
    catalogue = load_categories()
    assert [(f.code, f.zh) for f in catalogue.families] == [
        ("FJSZ", "房建市政"), ("TDKY", "土地与矿业权"), ("ZFCG", "政府采购"), ("GYCQ", "国有产权")]
    assert len(catalogue.all_subtypes()) == 27


def test_every_subtype_has_chinese_and_english_names_and_a_unique_family_prefixed_code():
    subtypes = load_categories().all_subtypes()
    assert len({s.code for s in subtypes}) == 27
    for sub in subtypes:
        assert sub.zh and sub.en
        assert sub.code.startswith(sub.family + "-")


def test_government_procurement_goods_map_to_ocds_goods_and_land_grants_to_no_procurement_category():
    catalogue = load_categories()
    assert catalogue.subtype("ZFCG-HW").ocds_category == "goods"
    assert catalogue.subtype("FJSZ-SG").ocds_category == "works"
    assert catalogue.subtype("TDKY-PM").ocds_category is None


def test_unknown_family_and_mismatched_subtype_are_refused_with_stable_codes():
    catalogue = load_categories()
    with pytest.raises(NotFound) as err:
        catalogue.family("XXXX")
    assert err.value.code == "unknown_family"
    with pytest.raises(Unprocessable) as err:
        catalogue.check_pair("ZFCG", "FJSZ-SG")
    assert err.value.code == "subtype_mismatch"
    assert "ZFCG-HW" in err.value.details["allowed"]


def test_a_catalogue_with_a_duplicate_code_is_rejected_at_load():
    data = {"families": [
        {"code": code, "zh": "甲", "en": "A", "subtypes": [
            {"code": f"{code}-X", "zh": "乙", "en": "B", "ocds_category": None}]} for code in
        ("FJSZ", "TDKY", "ZFCG", "GYCQ")]}
    data["families"][0]["subtypes"].append({"code": "FJSZ-X", "zh": "丙", "en": "C", "ocds_category": None})
    with pytest.raises(ValueError, match="twice"):
        parse_catalogue(data)


def test_tender_code_pads_the_sequence_to_five_digits():
    assert tender_code("ZS", 2026, "ZFCG", 42) == "ZS-2026-ZFCG-00042"
    assert tender_code("GD", 2027, "FJSZ", 99999) == "GD-2027-FJSZ-99999"


@pytest.mark.parametrize("args, field", [
    (("zs", 2026, "ZFCG", 1), "region_code"),
    (("Z", 2026, "ZFCG", 1), "region_code"),
    (("ZS-1", 2026, "ZFCG", 1), "region_code"),
    (("ZS", 1999, "ZFCG", 1), "year"),
    (("ZS", "2026", "ZFCG", 1), "year"),
    (("ZS", 2026, "ABCD", 1), "family"),
    (("ZS", 2026, "ZFCG", 0), "seq"),
    (("ZS", 2026, "ZFCG", 100000), "seq"),
    (("ZS", 2026, "ZFCG", True), "seq"),
])
def test_tender_code_refuses_bad_parts_and_names_the_field(args, field):
    with pytest.raises(Unprocessable) as err:
        tender_code(*args)
    assert err.value.code == "invalid_tender_code"
    assert field in err.value.details


@given(region=st.from_regex(r"[A-Z0-9]{2,8}", fullmatch=True), year=st.integers(2000, 2099),
       family=st.sampled_from(["FJSZ", "TDKY", "ZFCG", "GYCQ"]), seq=st.integers(1, 99999))
def test_a_tender_code_is_its_parts_joined_with_a_zero_padded_sequence(region, year, family, seq):
    code = tender_code(region, year, family, seq)
    assert code.split("-") == [region, str(year), family, f"{seq:05d}"]
