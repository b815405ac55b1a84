"""Region codes of experts and quotas (GB/T 2260)."""
import pytest

from core.errors import Unprocessable
from expert_pool.regions import check_expert_region, region_matches, region_name


def test_an_expert_lives_in_a_city_of_their_province():
    assert check_expert_region("440000", "442000") == ("440000", "442000")


@pytest.mark.parametrize("province,city", [("440100", "440100"), ("440000", "430100"), ("440000", "440000"),
                                           ("44", "4420")])
def test_a_city_outside_its_province_or_a_malformed_code_is_refused(province, city):
    with pytest.raises(Unprocessable) as err:
        check_expert_region(province, city)
    assert err.value.code == "invalid_region"


def test_a_quota_without_region_takes_everyone_and_a_city_quota_only_that_city():
    assert region_matches(None, "440100")
    assert region_matches("440100", "440100")
    assert not region_matches("440100", "442000")
    assert region_matches("440000", "442000")
    assert not region_matches("430000", "442000")


def test_guangdong_cities_have_chinese_and_english_names():
    assert region_name("442000") == "中山市"
    assert region_name("440400", "en") == "Zhuhai"
    assert region_name("510100") == "510100"
