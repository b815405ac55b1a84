"""The draw's public helpers: input checks, step 7 refusals, the published record, seed reuse."""
import hashlib

import pytest

from core.errors import Unprocessable
from evidence import randomness as rnd

SECRET = bytes(32)


def cand(cid, employer, *quotas):
    return {"id": cid, "employer": employer, "quotas": list(quotas)}


def request(*quotas, draw_id="D-T"):
    return {"draw_id": draw_id, "quotas": [{"name": n, "count": c, "backups": b} for n, c, b in quotas]}


def test_canonical_json_refuses_floats_with_a_clear_message():
    with pytest.raises(TypeError, match="float"):
        rnd.cj({"budget": 1.5})


def test_canonical_json_sorts_keys_and_keeps_chinese_unescaped():
    assert rnd.cj({"b": 1, "a": "评标"}) == '{"a":"评标","b":1}'.encode("utf-8")


def test_new_secret_is_32_fresh_bytes_and_commitment_is_its_sha256():
    a, b = rnd.new_secret(), rnd.new_secret()
    assert len(a) == 32 and a != b
    assert rnd.commitment(a) == hashlib.sha256(a).hexdigest()


def test_unsorted_candidates_are_refused():
    with pytest.raises(rnd.DrawInputError, match="sorted"):
        rnd.draw(SECRET, "x", request(("t", 1, 0)), [cand("E-2", "O-1", "t"), cand("E-1", "O-2", "t")])


def test_duplicate_candidate_ids_are_refused():
    with pytest.raises(rnd.DrawInputError, match="twice"):
        rnd.draw(SECRET, "x", request(("t", 1, 0)), [cand("E-1", "O-1", "t"), cand("E-1", "O-2", "t")])


def test_a_candidate_carrying_a_name_is_refused_so_no_name_reaches_the_published_record():
    leaky = {"id": "E-1", "employer": "O-1", "quotas": ["t"], "name": "张三"}
    with pytest.raises(rnd.DrawInputError):
        rnd.draw(SECRET, "x", request(("t", 1, 0)), [leaky])


def test_a_candidate_for_a_quota_the_request_lacks_is_refused():
    with pytest.raises(rnd.DrawInputError, match="does not have"):
        rnd.draw(SECRET, "x", request(("t", 1, 0)), [cand("E-1", "O-1", "econ")])


def test_empty_entropy_is_refused_because_the_server_alone_would_fix_the_outcome():
    with pytest.raises(rnd.DrawInputError) as err:
        rnd.draw(SECRET, "", request(("t", 1, 0)), [cand("E-1", "O-1", "t")])
    assert err.value.code == "missing_entropy"


def test_a_secret_of_the_wrong_length_is_refused():
    with pytest.raises(rnd.DrawInputError):
        rnd.draw(b"short", "x", request(("t", 1, 0)), [cand("E-1", "O-1", "t")])


def test_quota_with_zero_count_is_refused():
    with pytest.raises(rnd.DrawInputError):
        rnd.draw(SECRET, "x", request(("t", 0, 0)), [cand("E-1", "O-1", "t")])


def test_insufficient_candidates_error_is_unprocessable_with_quota_eligible_and_required():
    pool = [cand("E-1", "O-1", "t"), cand("E-2", "O-1", "t"), cand("E-3", "O-2", "t")]
    with pytest.raises(rnd.InsufficientCandidates) as err:
        rnd.check_sufficient(request(("t", 3, 0)), pool)
    assert isinstance(err.value, Unprocessable)
    assert err.value.code == "insufficient_candidates"
    assert err.value.details["quota"] == "t"
    assert err.value.details["eligible"] == 3
    assert err.value.details["required"] == 3
    assert err.value.details["employers"] == 2


def test_draw_itself_refuses_with_the_same_code_when_a_quota_runs_out():
    pool = [cand("E-1", "O-1", "t"), cand("E-2", "O-1", "t")]
    with pytest.raises(rnd.InsufficientCandidates) as err:
        rnd.draw(SECRET, "x", request(("t", 2, 0)), pool)
    assert err.value.code == "insufficient_candidates"
    assert err.value.details["quota"] == "t"


def test_sufficiency_check_sees_that_an_earlier_quota_can_take_a_later_quotas_only_employers():
    # Both economists could be drawn as engineers first, leaving the economics quota empty for some seeds.
    pool = [cand("E-1", "O-1", "tech", "econ"), cand("E-2", "O-2", "tech", "econ"), cand("E-3", "O-3", "tech")]
    with pytest.raises(rnd.InsufficientCandidates) as err:
        rnd.check_sufficient(request(("tech", 2, 0), ("econ", 1, 0)), pool)
    assert err.value.details == {"quota": "econ", "eligible": 2, "required": 1, "employers": 2, "guaranteed": 0}
    # Listing the scarce quota first makes every seed succeed.
    rnd.check_sufficient(request(("econ", 1, 0), ("tech", 2, 0)), pool)


def test_backups_may_fall_short_without_refusing_the_draw():
    pool = [cand("E-1", "O-1", "t"), cand("E-2", "O-2", "t")]
    rnd.check_sufficient(request(("t", 2, 3)), pool)
    outcome = rnd.draw(SECRET, "x", request(("t", 2, 3)), pool)
    assert outcome.quota("t").backups == ()


def test_verification_record_refuses_an_outcome_from_other_inputs():
    pool = [cand("E-1", "O-1", "t"), cand("E-2", "O-2", "t")]
    outcome = rnd.draw(SECRET, "one", request(("t", 1, 0)), pool)
    with pytest.raises(ValueError):
        rnd.verification_record(request=request(("t", 1, 0)), candidates=pool, secret=SECRET, entropy="two",
                                outcome=outcome)


def test_different_entropy_changes_the_seed():
    pool = [cand("E-1", "O-1", "t")]
    assert (rnd.compute_seed(SECRET, "a", request(("t", 1, 0)), pool)
            != rnd.compute_seed(SECRET, "b", request(("t", 1, 0)), pool))


def test_candidates_digest_is_the_inner_hash_of_the_seed_so_it_can_be_logged_before_the_entropy():
    pool = [cand("E-1", "O-1", "t"), cand("E-2", "O-2", "t")]
    digest = bytes.fromhex(rnd.candidates_digest(pool))
    req = request(("t", 1, 0))
    assert rnd.compute_seed(SECRET, "e", req, pool) == hashlib.sha256(
        SECRET + b"e" + rnd.cj(req) + digest).digest()
