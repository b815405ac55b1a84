"""The expert draw end to end without a database: avoidance screening, the candidate list and the verifiable draw,
checked with hypothesis over random pools, and against a few-line reading of ALGORITHMS.md §1 steps 3–6."""
import hashlib
import json
from datetime import datetime, timedelta, timezone

from hypothesis import assume, given, settings, strategies as st

from evidence import randomness as rnd
from expert_pool.rules import (DrawContext, ExpertQuota, ExpertRecord, ExpertStatus, LeavePeriod, ServiceRecord,
                               build_candidates, draw_request, exclusion_reasons, screen_experts)
from expert_pool.taxonomy import load_taxonomy

SESSION = datetime(2026, 6, 15, 1, 0, tzinfo=timezone.utc)
CONTEXT = DrawContext(tenderer_id="O-TENDER", session_at=SESSION, bidder_ids=frozenset({"O-BID1", "O-BID2"}),
                      authority_ids=frozenset({"O-AUTH"}), monthly_cap=3, familiar_window_days=90)
EMPLOYERS = ["O-TENDER", "O-BID1", "O-BID2", "O-AUTH", *(f"O-{i:03d}" for i in range(60)), None]
SPECIALTIES = ["A0101", "A0102", "A0201", "C0101", "C0102", "D0101"]
CITIES = ["440100", "442000", "440300"]
QUOTA_CHOICES = [("A01", None), ("A0101", "440100"), ("C01", "442000"), ("C0101", None), ("D0101", None)]


@st.composite
def experts(draw, i: int):
    away = draw(st.booleans()) and draw(st.booleans())
    return ExpertRecord(
        public_id=f"E-{i:05d}", employer_id=draw(st.sampled_from(EMPLOYERS)),
        status=draw(st.sampled_from([ExpertStatus.ACTIVE] * 8 + [ExpertStatus.SUSPENDED, ExpertStatus.RETIRED])),
        specialties=frozenset(draw(st.lists(st.sampled_from(SPECIALTIES), min_size=1, max_size=2))),
        region=draw(st.sampled_from(CITIES)),
        leave=(LeavePeriod(SESSION - timedelta(days=1), SESSION + timedelta(days=1)),) if away else (),
        declared_conflicts=frozenset(draw(st.lists(st.sampled_from(["O-BID1", "O-OTHER"]), max_size=1))),
        draws_this_month=draw(st.integers(0, 4)),
        service_history=tuple(ServiceRecord(draw(st.sampled_from(["O-TENDER", "O-005"])),
                                            SESSION - timedelta(days=draw(st.integers(1, 200))))
                              for _ in range(draw(st.integers(0, 1)))))


@st.composite
def scenarios(draw, min_pool: int = 0):
    size = draw(st.integers(min_pool, 80))
    pool = [draw(experts(i)) for i in range(size)]
    picked = draw(st.lists(st.sampled_from(QUOTA_CHOICES), min_size=1, max_size=3))
    quotas = [ExpertQuota(name=f"Q{i}", specialty=s, region=r, count=draw(st.integers(1, 3)),
                          backups=draw(st.integers(0, 2))) for i, (s, r) in enumerate(picked, start=1)]
    secret = draw(st.binary(min_size=32, max_size=32))
    entropy = draw(st.text(min_size=1, max_size=20))
    return pool, quotas, secret, entropy


def expert_draw(pool, quotas, secret, entropy):
    """The production path: screen, list candidates, refuse before drawing when a quota cannot be filled, draw."""
    taxonomy = load_taxonomy()
    screening = screen_experts(pool, CONTEXT)
    candidates = build_candidates(screening.eligible, quotas, taxonomy)
    request = draw_request("D-PROP01", quotas, lot="ZS-2026-FJSZ-00001-L01")
    try:
        rnd.check_sufficient(request, candidates)
    except rnd.InsufficientCandidates:
        return request, candidates, None
    return request, candidates, rnd.draw(secret, entropy, request, candidates)


@settings(max_examples=40, deadline=None)
@given(scenarios(min_pool=40))
def test_the_draw_never_picks_an_expert_whom_any_avoidance_rule_excludes(scenario):
    pool, quotas, secret, entropy = scenario
    _, _, outcome = expert_draw(pool, quotas, secret, entropy)
    assume(outcome is not None)  # a refused draw has its own tests; these need a drawn committee
    by_id = {e.public_id: e for e in pool}
    assert all(exclusion_reasons(by_id[pid], CONTEXT) == () for pid in outcome.picked)


@settings(max_examples=40, deadline=None)
@given(scenarios(min_pool=40))
def test_the_drawn_committee_has_one_person_per_employer_each_fitting_their_quota(scenario):
    pool, quotas, secret, entropy = scenario
    _, _, outcome = expert_draw(pool, quotas, secret, entropy)
    assume(outcome is not None)  # a refused draw has its own tests; these need a drawn committee
    by_id = {e.public_id: e for e in pool}
    employers = [by_id[pid].employer_key for pid in outcome.picked]
    assert len(employers) == len(set(employers))
    taxonomy = load_taxonomy()
    for quota, result in zip(quotas, outcome.results):
        assert len(result.primaries) == quota.count and len(result.backups) <= quota.backups
        assert all(quota.accepts(by_id[pid], taxonomy) for pid in (*result.primaries, *result.backups))


@settings(max_examples=30, deadline=None)
@given(scenarios())
def test_equal_inputs_give_the_same_committee(scenario):
    pool, quotas, secret, entropy = scenario
    first = expert_draw(pool, quotas, secret, entropy)[2]
    again = expert_draw(list(reversed(pool)), quotas, secret, entropy)[2]  # the order experts load in is irrelevant
    assert (first and first.result_json()) == (again and again.result_json())


def spec_steps_3_to_6(secret: bytes, entropy: str, request: dict, candidates: list) -> list:
    """ALGORITHMS.md §1 steps 3–6 as written, with nothing but hashlib and json."""
    def cj(x):
        return json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def h(b):
        return hashlib.sha256(b).digest()
    seed = h(secret + entropy.encode() + cj(request) + h(cj(candidates)))
    ranking = sorted(candidates, key=lambda c: h(seed + c["id"].encode()))
    ids, employers, out = set(), set(), {q["name"]: {"quota": q["name"]} for q in request["quotas"]}
    for part, size in (("primaries", "count"), ("backups", "backups")):
        for q in request["quotas"]:
            out[q["name"]][part] = []
            for c in ranking:
                if len(out[q["name"]][part]) == q[size]:
                    break
                if q["name"] in c["quotas"] and c["id"] not in ids and c["employer"] not in employers:
                    out[q["name"]][part].append(c["id"])
                    ids.add(c["id"])
                    employers.add(c["employer"])
    return [out[q["name"]] for q in request["quotas"]]


@settings(max_examples=40, deadline=None)
@given(scenarios(min_pool=40))
def test_expert_draws_agree_with_an_independent_reading_of_steps_3_to_6(scenario):
    pool, quotas, secret, entropy = scenario
    request, candidates, outcome = expert_draw(pool, quotas, secret, entropy)
    assume(outcome is not None)  # a refused draw has its own tests; these need a drawn committee
    assert outcome.result_json() == spec_steps_3_to_6(secret, entropy, request, candidates)
