"""`bidroom draw verify`: an honest record is OK, a tampered one names what differs."""
import copy
import io
import json

import pytest
from rich.console import Console

from evidence import randomness as rnd
from expert_pool.draw_verify import load_record, main, verify_record

REQUEST = {"draw_id": "D-VERIFY", "quotas": [
    {"name": "tech", "count": 3, "backups": 2, "specialty": "A01"},
    {"name": "econ", "count": 2, "backups": 1, "specialty": "C01"}]}
CANDIDATES = [{"id": f"E-{i:03d}", "employer": f"O-{i % 11}", "quotas": ["tech"] if i % 3 else ["econ", "tech"]}
              for i in range(40)]
SECRET = bytes.fromhex("11" * 32)


@pytest.fixture()
def record():
    return rnd.verification_record(request=REQUEST, candidates=CANDIDATES, secret=SECRET, entropy="c0ffee")


def test_an_honest_record_verifies(record):
    result = verify_record(record)
    assert result.ok
    assert result.recomputed_seed == record["seed"]


def test_a_tampered_seed_is_named(record):
    record["seed"] = "00" * 32
    assert verify_record(record).fields() == {"seed"}


def test_a_swapped_primary_is_named_in_the_result(record):
    record["result"][0]["primaries"][0] = record["result"][0]["backups"][0]
    result = verify_record(record)
    assert [d.field for d in result.differences] == ["result[0].primaries"]


def test_a_secret_that_does_not_match_the_commitment_is_named(record):
    record["commitment"] = rnd.commitment(bytes(32))
    assert verify_record(record).fields() == {"commitment"}


def test_a_changed_candidate_list_moves_the_seed_away_from_the_recorded_one(record):
    record["candidates"] = [c for c in record["candidates"] if c["id"] != record["result"][0]["primaries"][0]]
    assert "seed" in verify_record(record).fields()


def test_a_changed_entropy_is_caught_through_the_seed(record):
    record["entropy"] = "c0ffef"
    assert "seed" in verify_record(record).fields()


def test_an_unknown_algorithm_and_extra_fields_are_reported(record):
    other = copy.deepcopy(record)
    other["algorithm"] = "bidroom-draw-v2"
    assert verify_record(other).fields() == {"algorithm"}
    record["names"] = {"E-000": "张三"}
    assert verify_record(record).fields() == {"names"}


def test_unsorted_candidates_in_a_record_are_reported(record):
    record["candidates"] = list(reversed(record["candidates"]))
    assert verify_record(record).fields() == {"candidates"}


def test_records_with_floats_or_duplicate_keys_are_unreadable():
    with pytest.raises(ValueError):
        load_record('{"seed": 1.5}')
    with pytest.raises(ValueError):
        load_record('{"seed": "a", "seed": "b"}')


def test_cli_prints_ok_and_exits_zero_for_an_honest_record(record, tmp_path):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    out = io.StringIO()
    assert main([str(path)], console=Console(file=out, width=200)) == 0
    assert "OK" in out.getvalue()


def test_cli_lists_the_differences_and_exits_one_for_a_tampered_record(record, tmp_path):
    record["seed"] = "ff" * 32
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    out = io.StringIO()
    assert main([str(path)], console=Console(file=out, width=200)) == 1
    assert "seed" in out.getvalue() and "DIFFERS" in out.getvalue()


def test_cli_exits_two_for_a_missing_file(tmp_path):
    out = io.StringIO()
    assert main([str(tmp_path / "absent.json")], console=Console(file=out, width=200)) == 2


def test_cli_accepts_the_record_json_extracted_from_a_draw_record_pdf(record, tmp_path):
    path = tmp_path / "record.json"
    wrapper = {"record_no": "R-7Q4M2K9P", "kind": "expert_draw", "title": {"zh": "评标专家抽取记录",
               "en": "Expert draw record"}, "issued_at": "2026-06-01T02:00:00Z", "verify_url": None, "data": record}
    path.write_text(json.dumps(wrapper, ensure_ascii=False), encoding="utf-8")
    out = io.StringIO()
    assert main([str(path)], console=Console(file=out, width=200)) == 0
    assert "OK" in out.getvalue() and record["draw_id"] in out.getvalue()
