"""Draw quotas and the candidate list handed to the verifiable draw."""
import pytest

from core.errors import Unprocessable
from evidence import randomness as rnd
from expert_pool.rules import ExpertRecord, build_candidates, draw_request, validate_quotas
from expert_pool.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def code_of(raw) -> str:
    with pytest.raises(Unprocessable) as err:
        validate_quotas(raw, TAXONOMY)
    return err.value.code


def test_an_unknown_specialty_is_refused():
    assert code_of([{"name": "tech", "specialty": "Z9999", "count": 3}]) == "unknown_specialty"


def test_a_zero_or_negative_count_is_refused():
    assert code_of([{"name": "tech", "specialty": "A0101", "count": 0}]) == "invalid_count"
    assert code_of([{"name": "tech", "specialty": "A0101", "count": -2}]) == "invalid_count"
    assert code_of([{"name": "tech", "specialty": "A0101", "count": True}]) == "invalid_count"


def test_negative_backups_are_refused():
    assert code_of([{"name": "tech", "specialty": "A0101", "count": 3, "backups": -1}]) == "invalid_backups"


def test_an_empty_request_and_duplicate_names_are_refused():
    assert code_of([]) == "no_quotas"
    q = {"name": "tech", "specialty": "A0101", "count": 1}
    assert code_of([q, q]) == "duplicate_quota_name"


def test_a_quota_may_name_a_parent_specialty_and_omit_backups():
    quotas = validate_quotas([{"name": "造价", "specialty": "C01", "count": 2}], TAXONOMY)
    assert quotas[0].backups == 0
    assert quotas[0].to_request() == {"name": "造价", "count": 2, "backups": 0, "specialty": "C01"}


def test_a_quota_region_must_be_a_province_or_city_code():
    assert code_of([{"name": "tech", "specialty": "A0101", "count": 1, "region": "广州"}]) == "invalid_region"
    assert code_of([{"name": "tech", "specialty": "A0101", "count": 1, "region": "440103"}]) == "invalid_region"


def test_a_province_quota_takes_experts_of_every_city_in_the_province_and_a_city_quota_only_its_own():
    # A Guangzhou expert (440100) fills a Guangdong quota (440000) but not a Zhongshan one (442000).
    quotas = validate_quotas([
        {"name": "广东", "specialty": "A0101", "count": 1, "region": "440000"},
        {"name": "中山", "specialty": "A0101", "count": 1, "region": "442000"},
        {"name": "湖南", "specialty": "A0101", "count": 1, "region": "430000"},
    ], TAXONOMY)
    guangzhou = ExpertRecord("E-1", "O-1", specialties=frozenset({"A0101"}), region="440100")
    assert [q.name for q in quotas if q.accepts(guangzhou, TAXONOMY)] == ["广东"]


def test_candidates_list_each_expert_with_the_quotas_their_specialty_and_region_fill():
    quotas = validate_quotas([
        {"name": "省土建", "specialty": "A01", "count": 2, "backups": 1, "region": "440000"},
        {"name": "市土建", "specialty": "A01", "count": 3, "backups": 1, "region": "440100"},
        {"name": "造价", "specialty": "C0101", "count": 1},
    ], TAXONOMY)
    experts = [
        ExpertRecord("E-3", "O-1", specialties=frozenset({"A0105"}), region="440100"),
        ExpertRecord("E-1", "O-2", specialties=frozenset({"A0101", "C0101"}), region="440600"),
        ExpertRecord("E-2", None, specialties=frozenset({"D0101"}), region="440600"),
        ExpertRecord("E-4", None, specialties=frozenset({"C0101"}), region="440100"),
    ]
    candidates = build_candidates(experts, quotas, TAXONOMY)
    assert candidates == [
        {"id": "E-1", "employer": "O-2", "quotas": ["省土建", "造价"]},
        {"id": "E-3", "employer": "O-1", "quotas": ["省土建", "市土建"]},
        {"id": "E-4", "employer": "E-4", "quotas": ["造价"]},
    ]
    request = draw_request("D-1", quotas)
    rnd.validate_candidates(candidates, [q["name"] for q in request["quotas"]])
