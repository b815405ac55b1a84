"""Verifiable random draw, ALGORITHMS.md §1 ("bidroom-draw-v1"). Pure: no I/O, no clock.

Reused for expert draws (专家抽取), intermediary selection (中介超市随机抽取) and drawing lots between tied
bidders. Anyone holding the published record can recompute every step with hashlib and json alone, so every
byte that goes into a hash here is fixed by the spec; change nothing in this file without a new algorithm name.
Replacing decliners from the backups, and supplementary draws, are expert_pool.seating's.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from core.canonical import cj
from core.errors import Unprocessable

log = logging.getLogger(__name__)

__all__ = [
    "ALGORITHM", "SECRET_BYTES", "CANDIDATE_KEYS", "DrawInputError", "InsufficientCandidates", "Quota",
    "QuotaResult", "DrawOutcome", "cj", "new_secret", "commitment", "compute_seed", "candidates_digest",
    "rank_key", "rank", "select", "draw", "check_sufficient", "verification_record", "parse_quotas",
    "validate_candidates",
]

ALGORITHM = "bidroom-draw-v1"
SECRET_BYTES = 32
# A candidate carries exactly these keys: the published record must never leak a name or anything else.
CANDIDATE_KEYS = frozenset({"id", "employer", "quotas"})


class DrawInputError(Unprocessable):
    """The request or candidate list is not a well-formed draw input."""

    code = "invalid_draw_input"


class InsufficientCandidates(Unprocessable):
    """A quota cannot be filled (step 7): refused before any entropy is asked for."""

    code = "insufficient_candidates"


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Quota:
    """One line of the request's ordered `quotas`: how many primaries and backups under one name."""

    name: str
    count: int
    backups: int


@dataclass(frozen=True)
class QuotaResult:
    """Who was drawn for one quota; backups in their order of replacement."""

    quota: str
    primaries: tuple[str, ...]
    backups: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The per-quota object of the published `result` list."""
        return {"quota": self.quota, "primaries": list(self.primaries), "backups": list(self.backups)}


@dataclass(frozen=True)
class DrawOutcome:
    """Steps 3–6 computed: the seed, the full ranking and the result per quota in request order."""

    seed: bytes
    ranking: tuple[str, ...]
    results: tuple[QuotaResult, ...]

    def result_json(self) -> list[dict[str, Any]]:
        """The published `result` list."""
        return [r.to_json() for r in self.results]

    def quota(self, name: str) -> QuotaResult:
        """The result of the quota called `name`."""
        for r in self.results:
            if r.quota == name:
                return r
        raise KeyError(name)

    @property
    def picked(self) -> tuple[str, ...]:
        """Everyone drawn, primaries and backups of every quota."""
        return tuple(i for r in self.results for i in (*r.primaries, *r.backups))


# ---------------------------------------------------------------------------------------------------------
# Input validation. The hashes would happily digest anything; these checks keep nonsense out of the record.

def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def parse_quotas(request: Mapping[str, Any]) -> list[Quota]:
    """Read and check the request's `draw_id` and ordered `quotas`; filters beyond the three keys are kept as is."""
    if not isinstance(request, Mapping):
        raise DrawInputError("the draw request must be a JSON object")
    draw_id = request.get("draw_id")
    if not isinstance(draw_id, str) or not draw_id:
        raise DrawInputError("the draw request needs a non-empty string draw_id", details={"field": "draw_id"})
    raw = request.get("quotas")
    if not isinstance(raw, list) or not raw:
        raise DrawInputError("the draw request needs a non-empty list of quotas", details={"field": "quotas"})
    quotas: list[Quota] = []
    seen: set[str] = set()
    for i, q in enumerate(raw):
        if not isinstance(q, Mapping):
            raise DrawInputError(f"quota #{i} is not an object", details={"field": f"quotas[{i}]"})
        name, count, backups = q.get("name"), q.get("count"), q.get("backups")
        if not isinstance(name, str) or not name:
            raise DrawInputError(f"quota #{i} needs a non-empty name", details={"field": f"quotas[{i}].name"})
        if name in seen:
            raise DrawInputError(f"quota name {name!r} is used twice", details={"quota": name})
        if not _is_int(count) or count < 1:
            raise DrawInputError(f"quota {name!r} needs an integer count of at least 1",
                                 details={"quota": name, "field": "count"})
        if not _is_int(backups) or backups < 0:
            raise DrawInputError(f"quota {name!r} needs a non-negative integer number of backups",
                                 details={"quota": name, "field": "backups"})
        seen.add(name)
        quotas.append(Quota(name, count, backups))
    return quotas


def validate_candidates(candidates: Sequence[Mapping[str, Any]], quota_names: Iterable[str]) -> None:
    """Check shape, strict ascending order by id and that every listed quota exists in the request."""
    if not isinstance(candidates, (list, tuple)):
        raise DrawInputError("candidates must be a list")
    known = set(quota_names)
    previous: str | None = None
    for i, c in enumerate(candidates):
        if not isinstance(c, dict) or c.keys() != CANDIDATE_KEYS:
            raise DrawInputError(f"candidate #{i} must be an object with exactly id, employer and quotas",
                                 details={"index": i})
        cid, employer, quotas = c["id"], c["employer"], c["quotas"]
        if not isinstance(cid, str) or not cid:
            raise DrawInputError(f"candidate #{i} needs a non-empty string id", details={"index": i})
        if not isinstance(employer, str) or not employer:
            raise DrawInputError(f"candidate {cid} needs a non-empty string employer", details={"id": cid})
        if (not isinstance(quotas, (list, tuple)) or not all(type(q) is str for q in quotas)
                or len(set(quotas)) != len(quotas)):
            raise DrawInputError(f"candidate {cid} needs a list of distinct quota names", details={"id": cid})
        unknown = [q for q in quotas if q not in known]
        if unknown:
            raise DrawInputError(f"candidate {cid} names quotas the request does not have: {unknown}",
                                 details={"id": cid, "quotas": unknown})
        if previous is not None:
            if cid == previous:
                raise DrawInputError(f"candidate id {cid} appears twice", details={"id": cid})
            if cid < previous:
                raise DrawInputError(f"candidates must be sorted by id; {cid} comes after {previous}",
                                     details={"id": cid})
        previous = cid


# ---------------------------------------------------------------------------------------------------------
# Steps 1, 3 and 4.

def new_secret() -> bytes:
    """Step 1: the server's 32 random bytes, kept secret until the draw is executed."""
    return secrets.token_bytes(SECRET_BYTES)


def commitment(secret: bytes) -> str:
    """Step 1: hex(H(secret)), published when the draw is created."""
    return hashlib.sha256(secret).hexdigest()


def compute_seed(secret: bytes, entropy: str, request: Mapping[str, Any],
                 candidates: Sequence[Mapping[str, Any]]) -> bytes:
    """Step 3: H(secret || utf8(entropy) || cj(request) || H(cj(candidates)))."""
    return _h(secret + entropy.encode("utf-8") + cj(request) + _h(cj(candidates)))


def candidates_digest(candidates: Sequence[Mapping[str, Any]]) -> str:
    """hex(H(cj(candidates))), the inner hash of step 3.

    The spec commits only to the secret. Logging this digest (and the request) to the audit ledger when the
    draw is created fixes the candidate list before the entropy exists, so it cannot be trimmed afterwards.
    """
    return _h(cj(candidates)).hex()


def rank_key(seed: bytes, candidate_id: str) -> bytes:
    """Step 4: k(c) = H(seed || utf8(c.id))."""
    return _h(seed + candidate_id.encode("utf-8"))


def rank(seed: bytes, candidates: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Step 4: candidates in ascending order of rank key, compared as bytes."""
    return sorted(candidates, key=lambda c: rank_key(seed, c["id"]))


# ---------------------------------------------------------------------------------------------------------
# Steps 5–6.

def _walk(ranking: Sequence[Mapping[str, Any]], quota: str, want: int,
          taken_ids: set[str], taken_employers: set[str]) -> list[str]:
    """Take up to `want` candidates from the ranking who can fill `quota` and whose id and employer are fresh."""
    picks: list[str] = []
    if want <= 0:
        return picks
    for c in ranking:
        if quota in c["quotas"] and c["id"] not in taken_ids and c["employer"] not in taken_employers:
            picks.append(c["id"])
            taken_ids.add(c["id"])
            taken_employers.add(c["employer"])
            if len(picks) == want:
                break
    return picks


def select(seed: bytes, quotas: Sequence[Quota], candidates: Sequence[Mapping[str, Any]]) -> DrawOutcome:
    """Steps 4–6 for an already computed seed; raises InsufficientCandidates when a quota runs out."""
    ranking = rank(seed, candidates)
    taken_ids: set[str] = set()
    taken_employers: set[str] = set()  # one person per employer per draw, primaries and backups together
    primaries: dict[str, list[str]] = {}
    for q in quotas:
        picks = _walk(ranking, q.name, q.count, taken_ids, taken_employers)
        if len(picks) < q.count:
            eligible = sum(1 for c in candidates if q.name in c["quotas"])
            raise InsufficientCandidates(
                f"the draw ran out of candidates for quota {q.name!r}: {len(picks)} of {q.count} filled",
                details={"quota": q.name, "eligible": eligible, "required": q.count, "filled": len(picks)})
        primaries[q.name] = picks
    results = []
    for q in quotas:
        backups = _walk(ranking, q.name, q.backups, taken_ids, taken_employers)
        results.append(QuotaResult(q.name, tuple(primaries[q.name]), tuple(backups)))
    return DrawOutcome(seed=seed, ranking=tuple(c["id"] for c in ranking), results=tuple(results))


def draw(secret: bytes, entropy: str, request: Mapping[str, Any],
         candidates: Sequence[Mapping[str, Any]]) -> DrawOutcome:
    """Steps 3–6: the seed from the committed secret and the supervisor's entropy, then primaries and backups."""
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != SECRET_BYTES:
        raise DrawInputError(f"the secret must be {SECRET_BYTES} bytes")
    if not isinstance(entropy, str) or not entropy:
        # An empty entropy would leave the outcome fixed by the server alone, defeating the commitment.
        raise DrawInputError("the supervisor's entropy must be a non-empty string", code="missing_entropy")
    quotas = parse_quotas(request)
    validate_candidates(candidates, (q.name for q in quotas))
    seed = compute_seed(bytes(secret), entropy, request, candidates)
    outcome = select(seed, quotas, candidates)
    log.debug("draw %s executed over %d candidates", request["draw_id"], len(candidates))
    return outcome


# ---------------------------------------------------------------------------------------------------------
# Step 7: refuse before entropy is asked for, so that no one can ever throw away an unwelcome draw.

def _employers_by_quota(quotas: Sequence[Quota], candidates: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {q.name: set() for q in quotas}
    for c in candidates:
        for name in c["quotas"]:
            out[name].add(c["employer"])
    return out


def _most_employers_used_up(earlier: Sequence[Quota], employers: Mapping[str, set[str]], target: set[str]) -> int:
    """Largest number of `target` employers the primaries of `earlier` quotas can take between them.

    A bipartite b-matching (quota i may take up to count_i employers, each employer once), found with BFS
    augmenting paths. Any such taking is realisable by some ranking, so it is the worst case a seed can bring.
    """
    if not earlier or not target:
        return 0
    capacity = [q.count for q in earlier]
    neighbours = [sorted(employers[q.name] & target) for q in earlier]
    owner: dict[str, int] = {}
    load = [0] * len(earlier)
    taken = 0
    while taken < len(target):
        reached_from: dict[str, int] = {}       # employer -> quota that would take it
        lost_via: dict[int, str | None] = {}    # quota -> employer it would give up (None: a spare slot)
        queue = deque(i for i in range(len(earlier)) if load[i] < capacity[i])
        for i in queue:
            lost_via[i] = None
        free: str | None = None
        while queue and free is None:
            i = queue.popleft()
            for e in neighbours[i]:
                if e in reached_from or owner.get(e) == i:
                    continue
                reached_from[e] = i
                if e not in owner:
                    free = e
                    break
                k = owner[e]
                if k not in lost_via:
                    lost_via[k] = e
                    queue.append(k)
        if free is None:
            break
        e: str | None = free
        while e is not None:
            i = reached_from[e]
            owner[e] = i
            e = lost_via[i]
            if e is None:
                load[i] += 1
        taken += 1
    return taken


def check_sufficient(request: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]) -> None:
    """Step 7: refuse with `insufficient_candidates` unless every seed whatsoever fills every quota's primaries.

    Counting candidates is not enough: the draw takes one person per employer, and quotas earlier in the
    request may, for an unlucky seed, take the very employers a later quota depends on. So for each quota we
    subtract the most of its employers that earlier quotas could take, and require `count` to remain.
    """
    quotas = parse_quotas(request)
    validate_candidates(candidates, (q.name for q in quotas))
    employers = _employers_by_quota(quotas, candidates)
    for j, q in enumerate(quotas):
        eligible = sum(1 for c in candidates if q.name in c["quotas"])
        own = employers[q.name]
        used_up = _most_employers_used_up(quotas[:j], employers, own)
        guaranteed = len(own) - used_up
        if guaranteed >= q.count:
            continue
        details = {"quota": q.name, "eligible": eligible, "required": q.count,
                   "employers": len(own), "guaranteed": guaranteed}
        if len(own) < q.count:
            message = (f"quota {q.name!r} needs {q.count} but has {eligible} eligible candidates "
                       f"from only {len(own)} employers (one person per employer)")
        else:
            message = (f"quota {q.name!r} needs {q.count} but earlier quotas could take {used_up} of its "
                       f"{len(own)} employers, leaving {guaranteed}; list the scarcer quota first or widen it")
        raise InsufficientCandidates(message, details=details)


# ---------------------------------------------------------------------------------------------------------
# Step 8: the published record.

def verification_record(*, request: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]], secret: bytes,
                        entropy: str, outcome: DrawOutcome | None = None) -> dict[str, Any]:
    """The JSON object published once the draw is executed (served at /draws/{id}/verification)."""
    if outcome is None:
        outcome = draw(secret, entropy, request, candidates)
    elif outcome.seed != compute_seed(bytes(secret), entropy, request, candidates):
        raise ValueError("the outcome was not computed from these inputs")
    # Round-tripping through cj detaches the record from the caller's mutable objects.
    return {
        "algorithm": ALGORITHM,
        "draw_id": request["draw_id"],
        "request": json.loads(cj(request)),
        "candidates": json.loads(cj(list(candidates))),
        "commitment": commitment(bytes(secret)),
        "secret": bytes(secret).hex(),
        "entropy": entropy,
        "seed": outcome.seed.hex(),
        "result": outcome.result_json(),
    }
