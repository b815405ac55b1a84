"""`bidroom draw verify RECORD.json`: recompute a published draw (ALGORITHMS.md §1, steps 3–6) and say what differs.

Works from the record alone, offline. `verify_record` is pure; `main` reads the file and prints with rich.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from core.errors import DomainError
from evidence import randomness as rnd

log = logging.getLogger(__name__)

RECORD_FIELDS = ("algorithm", "draw_id", "request", "candidates", "commitment", "secret", "entropy", "seed",
                 "result")


@dataclass(frozen=True)
class Difference:
    """One thing in the record that does not match what the inputs give."""

    field: str
    message: str
    recorded: Any = None
    recomputed: Any = None


@dataclass
class VerifyResult:
    """All differences found; an empty list means the record is consistent."""

    differences: list[Difference] = field(default_factory=list)
    recomputed_seed: str | None = None
    recomputed_result: list[dict[str, Any]] | None = None

    @property
    def ok(self) -> bool:
        return not self.differences

    def fields(self) -> set[str]:
        """The top-level record fields named by the differences (e.g. {"seed", "result"})."""
        return {d.field.split("[", 1)[0].split(".", 1)[0] for d in self.differences}

    def add(self, field_name: str, message: str, recorded: Any = None, recomputed: Any = None) -> None:
        self.differences.append(Difference(field_name, message, recorded, recomputed))


def _hex_bytes(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _compare_result(out: VerifyResult, recorded: Any, recomputed: list[dict[str, Any]]) -> None:
    if not isinstance(recorded, list):
        out.add("result", "the result must be a list of quota results", recorded, recomputed)
        return
    if len(recorded) != len(recomputed):
        out.add("result", f"the result has {len(recorded)} quotas; the request gives {len(recomputed)}",
                len(recorded), len(recomputed))
    for i, want in enumerate(recomputed):
        got = recorded[i] if i < len(recorded) else None
        where = f"result[{i}]"
        if not isinstance(got, dict):
            out.add(where, f"quota {want['quota']!r} is missing from the result", got, want)
            continue
        extra = set(got) - {"quota", "primaries", "backups"}
        if extra:
            out.add(where, f"unexpected keys {sorted(extra)}", sorted(extra), None)
        if got.get("quota") != want["quota"]:
            out.add(f"{where}.quota", "the quota name differs", got.get("quota"), want["quota"])
        for part in ("primaries", "backups"):
            if got.get(part) != want[part]:
                out.add(f"{where}.{part}", f"the {part} of quota {want['quota']!r} differ", got.get(part), want[part])


def verify_record(record: dict[str, Any]) -> VerifyResult:
    """Recompute commitment, seed and result from the record's own inputs and list every mismatch."""
    out = VerifyResult()
    if not isinstance(record, dict):
        out.add("record", "the record must be a JSON object")
        return out
    for name in RECORD_FIELDS:
        if name not in record:
            out.add(name, "missing from the record")
    for name in sorted(set(record) - set(RECORD_FIELDS)):
        out.add(name, "not part of a bidroom-draw-v1 record")
    if record.get("algorithm", rnd.ALGORITHM) != rnd.ALGORITHM:
        out.add("algorithm", f"this verifier knows only {rnd.ALGORITHM}", record.get("algorithm"), rnd.ALGORITHM)
        return out

    secret = _hex_bytes(record.get("secret"))
    if "secret" in record:
        if secret is None:
            out.add("secret", "the secret must be a hex string", record.get("secret"))
        elif len(secret) != rnd.SECRET_BYTES:
            out.add("secret", f"the secret must be {rnd.SECRET_BYTES} bytes, not {len(secret)}", record["secret"])
    if secret is not None and "commitment" in record:
        expected = rnd.commitment(secret)
        if record["commitment"] != expected:
            out.add("commitment", "the commitment is not SHA-256 of the secret", record["commitment"], expected)

    request, candidates, entropy = record.get("request"), record.get("candidates"), record.get("entropy")
    if "entropy" in record and not isinstance(entropy, str):
        out.add("entropy", "the entropy must be a string", entropy)
        entropy = None
    inputs_ok = True
    quotas: list[rnd.Quota] = []
    try:
        quotas = rnd.parse_quotas(request if isinstance(request, dict) else {})
    except DomainError as err:
        if "request" in record:
            out.add("request", err.message, _details(err))
        inputs_ok = False
    if inputs_ok:
        if "draw_id" in record and record["draw_id"] != request["draw_id"]:
            out.add("draw_id", "the draw id differs from the request's", record["draw_id"], request["draw_id"])
        try:
            rnd.validate_candidates(candidates, (q.name for q in quotas))
        except DomainError as err:
            if "candidates" in record:
                out.add("candidates", err.message, _details(err))
            inputs_ok = False
    if not inputs_ok or secret is None or entropy is None:
        return out

    try:
        seed = rnd.compute_seed(secret, entropy, request, candidates)
    except (TypeError, ValueError) as err:
        # Floats or lone surrogates: the inputs cannot be canonicalised, so nobody can recompute them.
        out.add("request", f"the inputs cannot be put in canonical JSON: {err}")
        return out
    out.recomputed_seed = seed.hex()
    if "seed" in record and record["seed"] != seed.hex():
        out.add("seed", "the seed is not H(secret || entropy || cj(request) || H(cj(candidates)))",
                record["seed"], seed.hex())
    try:
        outcome = rnd.select(seed, quotas, candidates)
    except rnd.InsufficientCandidates as err:
        out.add("result", f"recomputing the draw fails: {err.message}", record.get("result"), _details(err))
        return out
    out.recomputed_result = outcome.result_json()
    if "result" in record:
        _compare_result(out, record["result"], out.recomputed_result)
    return out


def _details(err: DomainError) -> Any:
    return err.details or None


def _no_floats(text: str) -> Any:
    raise ValueError(f"the record holds a non-integer number ({text}); bidroom records never do")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values under one key would let two verifiers read two different records from one file.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"the key {key!r} appears twice in one object")
        obj[key] = value
    return obj


def load_record(text: str) -> dict[str, Any]:
    """Parse a record strictly: no floats, no NaN, no duplicate keys.

    The record.json embedded in a draw record PDF wraps the verification record in its `data` field (next to the
    record number and title); such a file is unwrapped, so it can be checked as extracted from the PDF.
    """
    record = json.loads(text, parse_float=_no_floats, parse_constant=_no_floats,
                        object_pairs_hook=_no_duplicate_keys)
    if (isinstance(record, dict) and "algorithm" not in record and record.get("kind") == "expert_draw"
            and isinstance(record.get("data"), dict)):
        return record["data"]
    return record


def _show(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    """Verify one record file (or "-" for stdin): 0 when OK, 1 when something differs, 2 when unreadable."""
    parser = argparse.ArgumentParser(prog="bidroom draw verify",
                                     description="Re-run a published bidroom draw and compare it with its record.")
    parser.add_argument("record", help="the verification record (JSON), or - for standard input")
    args = parser.parse_args(list(argv) if argv is not None else None)
    console = console or Console()
    try:
        if args.record == "-":
            text = sys.stdin.read()
        else:
            with open(args.record, encoding="utf-8") as f:
                text = f.read()
        record = load_record(text)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        console.print(f"[bold red]cannot read {args.record}[/]: {err}")
        return 2
    result = verify_record(record)
    draw_id = record.get("draw_id") if isinstance(record, dict) else None
    if result.ok:
        quotas = len(result.recomputed_result or [])
        console.print(f"[bold green]OK[/] draw {draw_id}: commitment, seed and result ({quotas} quotas) "
                      f"recomputed from the record's inputs")
        console.print(f"seed {result.recomputed_seed}")
        return 0
    table = Table(title=f"draw {draw_id}: {len(result.differences)} difference(s)")
    table.add_column("field", style="bold")
    table.add_column("problem")
    table.add_column("recorded", overflow="fold")
    table.add_column("recomputed", overflow="fold")
    for d in result.differences:
        table.add_row(d.field, d.message, _show(d.recorded), _show(d.recomputed))
    console.print(table)
    console.print("[bold red]DIFFERS[/]")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
