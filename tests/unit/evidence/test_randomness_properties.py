"""Invariants of the verifiable draw that users depend on, checked over random pools with hypothesis."""
import itertools

from hypothesis import assume, given, settings, strategies as st

from evidence import randomness as rnd


@st.composite
def pools(draw, max_candidates=30):
    n_quotas = draw(st.integers(1, 3))
    names = [f"q{i}" for i in range(n_quotas)]
    quotas = [{"name": n, "count": draw(st.integers(1, 3)), "backups": draw(st.integers(0, 3))} for n in names]
    size = draw(st.integers(0, max_candidates))
    employers = draw(st.integers(1, max(1, size)))
    candidates = [{"id": f"E-{i:04d}", "employer": f"O-{draw(st.integers(0, employers - 1))}",
                   "quotas": draw(st.lists(st.sampled_from(names), min_size=1, unique=True))} for i in range(size)]
    return {"draw_id": "D-PROP", "quotas": quotas}, candidates


secrets_ = st.binary(min_size=32, max_size=32)
entropies = st.text(min_size=1, max_size=32)


def run(secret, entropy, request, candidates):
    try:
        return rnd.draw(secret, entropy, request, candidates)
    except rnd.InsufficientCandidates:
        return None


@settings(max_examples=200, deadline=None)
@given(pools(), secrets_, entropies)
def test_equal_inputs_always_give_the_same_draw(pool, secret, entropy):
    request, candidates = pool
    first = run(secret, entropy, request, candidates)
    second = run(secret, entropy, dict(request), [dict(c) for c in candidates])
    assert first == second


@settings(max_examples=200, deadline=None)
@given(pools(), secrets_, entropies)
def test_draw_never_picks_two_people_from_one_employer(pool, secret, entropy):
    request, candidates = pool
    outcome = run(secret, entropy, request, candidates)
    assume(outcome is not None)
    employer = {c["id"]: c["employer"] for c in candidates}
    picked = outcome.picked
    assert len({employer[i] for i in picked}) == len(picked)


@settings(max_examples=200, deadline=None)
@given(pools(), secrets_, entropies)
def test_draw_picks_only_given_candidates_once_each_and_only_for_quotas_they_can_fill(pool, secret, entropy):
    request, candidates = pool
    outcome = run(secret, entropy, request, candidates)
    assume(outcome is not None)
    fills = {c["id"]: set(c["quotas"]) for c in candidates}
    assert len(set(outcome.picked)) == len(outcome.picked)
    for result in outcome.results:
        for person in (*result.primaries, *result.backups):
            assert person in fills
            assert result.quota in fills[person]


@settings(max_examples=200, deadline=None)
@given(pools(), secrets_, entropies)
def test_quotas_are_filled_in_request_order_from_the_top_of_the_ranking(pool, secret, entropy):
    request, candidates = pool
    outcome = run(secret, entropy, request, candidates)
    assume(outcome is not None)
    position = {cid: n for n, cid in enumerate(outcome.ranking)}
    by_id = {c["id"]: c for c in candidates}
    assert [r.quota for r in outcome.results] == [q["name"] for q in request["quotas"]]
    taken_before: set[str] = set()
    for quota, result in zip(request["quotas"], outcome.results):
        assert len(result.primaries) == quota["count"]
        assert [position[p] for p in result.primaries] == sorted(position[p] for p in result.primaries)
        # Anyone ranked above this quota's last primary who could fill it was blocked by an earlier pick.
        last = position[result.primaries[-1]]
        blocked_employers = {by_id[i]["employer"] for i in taken_before}
        for cid in outcome.ranking[:last]:
            c = by_id[cid]
            if quota["name"] in c["quotas"] and cid not in result.primaries:
                colleagues_above = {by_id[p]["employer"] for p in result.primaries if position[p] < position[cid]}
                assert cid in taken_before or c["employer"] in blocked_employers | colleagues_above
        taken_before |= set(result.primaries)


@settings(max_examples=150, deadline=None)
@given(pools(), st.lists(entropies, min_size=5, max_size=5, unique=True))
def test_a_pool_that_passes_the_sufficiency_check_never_runs_out_whatever_the_entropy(pool, entropies_):
    request, candidates = pool
    try:
        rnd.check_sufficient(request, candidates)
    except rnd.InsufficientCandidates:
        assume(False)
    for entropy in entropies_:
        assert run(bytes(32), entropy, request, candidates) is not None


def greedy_fills(order, quotas):
    """The primaries walk of step 5 over a given ranking: True when every quota reaches its count."""
    ids, employers = set(), set()
    for q in quotas:
        got = 0
        for c in order:
            if got == q["count"]:
                break
            if q["name"] in c["quotas"] and c["id"] not in ids and c["employer"] not in employers:
                ids.add(c["id"])
                employers.add(c["employer"])
                got += 1
        if got < q["count"]:
            return False
    return True


@settings(max_examples=120, deadline=None)
@given(pools(max_candidates=6))
def test_sufficiency_check_refuses_exactly_the_pools_some_ranking_would_exhaust(pool):
    request, candidates = pool
    every_ranking_fills = all(greedy_fills(order, request["quotas"])
                              for order in itertools.permutations(candidates))
    try:
        rnd.check_sufficient(request, candidates)
        accepted = True
    except rnd.InsufficientCandidates:
        accepted = False
    assert accepted == every_ranking_fills
