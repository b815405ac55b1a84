"""The draw against ALGORITHMS.md §1 itself: a golden vector and an independent re-implementation of steps 3–6.

Nothing here calls the production hashing or canonicalisation: an outside verifier would only have hashlib
and json, and so do these tests.
"""
import hashlib
import json

from hypothesis import given, settings, strategies as st

from evidence import randomness as rnd

SECRET = bytes(range(32))
ENTROPY = "监督员-7f3a"
REQUEST = {"draw_id": "D-GOLDEN1", "quotas": [
    {"name": "土建", "count": 2, "backups": 1, "specialty": "A0101"},
    {"name": "造价", "count": 1, "backups": 1, "specialty": "C0101"}]}
CANDIDATES = [
    {"id": "E-0001", "employer": "O-A", "quotas": ["土建"]},
    {"id": "E-0002", "employer": "O-B", "quotas": ["土建", "造价"]},
    {"id": "E-0003", "employer": "O-A", "quotas": ["造价"]},
    {"id": "E-0004", "employer": "O-C", "quotas": ["土建"]},
    {"id": "E-0005", "employer": "O-D", "quotas": ["造价"]},
    {"id": "E-0006", "employer": "O-E", "quotas": ["土建"]},
]
# cj(REQUEST) and cj(CANDIDATES) written out by hand: keys sorted, no spaces, Chinese left as UTF-8.
REQUEST_BYTES = ('{"draw_id":"D-GOLDEN1","quotas":[{"backups":1,"count":2,"name":"土建","specialty":"A0101"},'
                 '{"backups":1,"count":1,"name":"造价","specialty":"C0101"}]}').encode("utf-8")
CANDIDATES_BYTES = ('[{"employer":"O-A","id":"E-0001","quotas":["土建"]},'
                    '{"employer":"O-B","id":"E-0002","quotas":["土建","造价"]},'
                    '{"employer":"O-A","id":"E-0003","quotas":["造价"]},'
                    '{"employer":"O-C","id":"E-0004","quotas":["土建"]},'
                    '{"employer":"O-D","id":"E-0005","quotas":["造价"]},'
                    '{"employer":"O-E","id":"E-0006","quotas":["土建"]}]').encode("utf-8")
GOLDEN_SEED = "2ebde384be74e9334ac7c7e846d96277ae88da1a1752284a8be78e0bb001ebf6"
GOLDEN_COMMITMENT = "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_canonical_json_of_the_golden_inputs_matches_the_hand_written_bytes():
    assert rnd.cj(REQUEST) == REQUEST_BYTES
    assert rnd.cj(CANDIDATES) == CANDIDATES_BYTES


def test_golden_seed_equals_the_hash_computed_by_hand():
    by_hand = sha(SECRET + ENTROPY.encode("utf-8") + REQUEST_BYTES + sha(CANDIDATES_BYTES))
    assert by_hand.hex() == GOLDEN_SEED
    assert rnd.compute_seed(SECRET, ENTROPY, REQUEST, CANDIDATES).hex() == GOLDEN_SEED


def test_golden_commitment_is_sha256_of_the_secret():
    assert rnd.commitment(SECRET) == hashlib.sha256(SECRET).hexdigest() == GOLDEN_COMMITMENT


def test_golden_draw_skips_a_higher_ranked_colleague_of_an_already_drawn_expert():
    seed = bytes.fromhex(GOLDEN_SEED)
    ranking = sorted((c["id"] for c in CANDIDATES), key=lambda i: sha(seed + i.encode("utf-8")))
    assert ranking == ["E-0006", "E-0003", "E-0001", "E-0004", "E-0002", "E-0005"]
    outcome = rnd.draw(SECRET, ENTROPY, REQUEST, CANDIDATES)
    assert list(outcome.ranking) == ranking
    # E-0003 ranks second but works for O-A, whose E-0001 already sits in 土建.
    assert outcome.result_json() == [
        {"quota": "土建", "primaries": ["E-0006", "E-0001"], "backups": ["E-0004"]},
        {"quota": "造价", "primaries": ["E-0002"], "backups": ["E-0005"]},
    ]


def test_golden_verification_record_has_exactly_the_published_shape():
    record = rnd.verification_record(request=REQUEST, candidates=CANDIDATES, secret=SECRET, entropy=ENTROPY)
    assert record == {
        "algorithm": "bidroom-draw-v1", "draw_id": "D-GOLDEN1", "request": REQUEST, "candidates": CANDIDATES,
        "commitment": GOLDEN_COMMITMENT, "secret": SECRET.hex(), "entropy": ENTROPY, "seed": GOLDEN_SEED,
        "result": [{"quota": "土建", "primaries": ["E-0006", "E-0001"], "backups": ["E-0004"]},
                   {"quota": "造价", "primaries": ["E-0002"], "backups": ["E-0005"]}],
    }
    assert json.loads(json.dumps(record, ensure_ascii=False)) == record


def spec_draw(secret: bytes, entropy: str, request: dict, candidates: list) -> list | None:
    """Steps 3–6 straight from ALGORITHMS.md §1; None when a quota cannot reach its count."""
    def canon(x):
        return json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    seed = sha(secret + entropy.encode() + canon(request) + sha(canon(candidates)))
    ranked = sorted(candidates, key=lambda c: sha(seed + c["id"].encode()))
    ids, employers, result = set(), set(), []
    for phase in ("count", "backups"):
        for i, q in enumerate(request["quotas"]):
            picks = []
            for c in ranked:
                if len(picks) == q[phase]:
                    break
                if q["name"] in c["quotas"] and c["id"] not in ids and c["employer"] not in employers:
                    picks.append(c["id"])
                    ids.add(c["id"])
                    employers.add(c["employer"])
            if phase == "count":
                if len(picks) < q["count"]:
                    return None
                result.append({"quota": q["name"], "primaries": picks, "backups": []})
            else:
                result[i]["backups"] = picks
    return result


@st.composite
def draw_inputs(draw):
    names = draw(st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=3, unique=True))
    quotas = [{"name": n, "count": draw(st.integers(1, 3)), "backups": draw(st.integers(0, 3)),
               "specialty": draw(st.sampled_from(["A0101", "C01", "D"]))} for n in names]
    ids = sorted(draw(st.lists(st.text(min_size=1, max_size=6), max_size=24, unique=True)))
    employers = draw(st.integers(1, 15))
    candidates = [{"id": i, "employer": f"O-{draw(st.integers(0, employers - 1))}",
                   "quotas": draw(st.lists(st.sampled_from(names), min_size=1, unique=True))} for i in ids]
    request = {"draw_id": draw(st.text(min_size=1, max_size=8)), "quotas": quotas, "region": "440100"}
    secret = draw(st.binary(min_size=32, max_size=32))
    entropy = draw(st.text(min_size=1, max_size=40))
    return secret, entropy, request, candidates


@settings(max_examples=120, deadline=None)
@given(draw_inputs())
def test_production_draw_agrees_with_an_independent_reading_of_the_spec(inputs):
    secret, entropy, request, candidates = inputs
    expected = spec_draw(secret, entropy, request, candidates)
    try:
        got = rnd.draw(secret, entropy, request, candidates).result_json()
    except rnd.InsufficientCandidates:
        got = None
    assert got == expected
