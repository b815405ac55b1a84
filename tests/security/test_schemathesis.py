"""Schema fuzzing: schemathesis, an outside tool, against a live server's own OpenAPI document, as every role.

The server is the application on a real TCP port; schemathesis runs as its command line does in CI, once per
role (anonymous, admin, agent, bidder, expert, supervisor), with a fixed seed and a bounded number of cases per
operation, the runs side by side. The anonymous run covers every operation of the document; each role's run
covers the operations the role may call (`x-roles` in the document, and every operation without one), so every
operation is fuzzed with each token that gets past its role check. Two kinds of work that could not find
anything new are left out: public operations that ignore the caller (SAME_FOR_EVERY_CALLER) are fuzzed once,
anonymously, not once more per role with the very same requests; and a run skips the examples phase when its
document has no example, and the stateful phase when no operation it gets past authentication with starts a
link (`phases_for`: the anonymous run fuzzes only). Every check but `positive_data_acceptance` runs: a request the
schema allows may still break a business rule (a 422 with a stable code is the documented answer). So each run
holds the document to what the issue asks: no 5xx, no response outside its documented schema, no undocumented
status code, no undocumented content type, a 405 for undeclared methods, and no operation that answers without
the authentication it declares. `--checks all` would also hold every response to 10 s (`max_response_time`), a
timing a shared CI machine cannot promise and the suite never asserts: its limit is the request timeout instead,
past which a request fails anyway.
"""
from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import re
import sys
from pathlib import Path

from tests.helpers import staff
from tests.security.world import ROLES, accounts

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261201
EXAMPLES = 1          # cases per operation per role and phase; the seed makes the run repeatable
PARALLEL = 3          # schemathesis processes at once
TIMEOUT_S = 60        # a request not answered by then fails the run
# operations that end the caller's own session: fuzzed by a run of their own, as an admin account of its own, so
# that they do not sign out a role halfway through its run
SESSION_ENDING = ("/api/v1/admin/users/{user_id}/revoke-sessions",)
# public operations whose answer does not depend on who calls (the handler never reads the caller; credentials,
# if any, are in the body or query): with the fixed seed every run would send them the very same requests, so the
# anonymous run alone fuzzes them. Any other public operation is fuzzed by every run, as every role.
SAME_FOR_EVERY_CALLER = frozenset({
    "POST /api/v1/auth/login", "POST /api/v1/auth/refresh", "POST /api/v1/auth/register",
    "GET /api/v1/enrolment", "POST /api/v1/enrolment/totp", "POST /api/v1/enrolment/complete",
    "GET /api/v1/tenders/feed.atom", "GET /api/v1/ocds/releases", "POST /api/v1/records/verify",
    "GET /api/v1/pki/root.pem", "GET /api/v1/pki/crl", "GET /api/v1/audit/checkpoint",
})


async def schemathesis(base: str, schema_file: Path, headers: dict, report: Path, *extra: str,
                       phases: str = "examples,fuzzing,stateful") -> tuple[int, str]:
    args = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(ROOT / "tests/security/schemathesis.toml"),
            "run", str(schema_file), "--url", base, "--seed", str(SEED), "--max-examples", str(EXAMPLES),
            "--phases", phases, "--checks", "all",
            "--exclude-checks", "positive_data_acceptance", "--workers", "1", "--no-shrink",
            "--request-timeout", str(TIMEOUT_S), "--max-response-time", str(TIMEOUT_S),
            "--suppress-health-check", "all", "--warnings", "off",
            "--report", "ndjson", "--report-ndjson-path", str(report), *extra]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.security.st_hooks", "PYTHONPATH": str(ROOT)}
    # run in the report's directory: schemathesis keeps an example cache (.schemathesis/) in its working directory
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, cwd=report.parent, env=env)
    out, _ = await proc.communicate()
    return proc.returncode, out.decode("utf-8", "replace")


def operations_tested(report: Path) -> set[str]:
    """The operations a run sent requests to, from its NDJSON event stream."""
    labels = set()
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished and finished.get("recorder", {}).get("cases"):
            labels.add(finished["recorder"]["label"])
    return labels


def failures(output: str) -> str:
    """The part of schemathesis' console output that explains its failures."""
    start = output.find("=== FAILURES")
    if start < 0:
        start = output.find("=== ERRORS")
    return output[start:] if start >= 0 else output[-6000:]


def document_for(spec: dict, role: str) -> dict:
    """The operations `role` may call (its own and the public ones but SAME_FOR_EVERY_CALLER); every other
    operation refuses it with 403 role_forbidden before reading anything, which the anonymous run and the
    document's 403 rows already cover. Links to operations left out are dropped with them."""
    paths = {}
    for path, methods in spec["paths"].items():
        kept = {m: copy.deepcopy(op) for m, op in methods.items()
                if role == "anonymous" or (role in op.get("x-roles", [role])
                                           and f"{m.upper()} {path}" not in SAME_FOR_EVERY_CALLER)}
        if kept:
            paths[path] = kept
    present = {op["operationId"] for methods in paths.values() for op in methods.values()}
    for methods in paths.values():
        for op in methods.values():
            for answer in op["responses"].values():
                if "links" in answer:
                    answer["links"] = {k: v for k, v in answer["links"].items() if v["operationId"] in present}
                    if not answer["links"]:
                        del answer["links"]
    return {**spec, "paths": paths}


def labels(spec: dict) -> set[str]:
    return {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops}


def schema_texts(document: dict, ops: list[dict]):
    """Each operation as JSON, then every component schema it refers to, directly or not."""
    components = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    pending = []
    for op in ops:
        text = json.dumps(op, ensure_ascii=False)
        pending += re.findall(r"#/components/schemas/([^\"]+)", text)
        yield text
    while pending:
        name = pending.pop()
        if name in seen or name not in components:
            continue
        seen.add(name)
        text = json.dumps(components[name], ensure_ascii=False)
        pending += re.findall(r"#/components/schemas/([^\"]+)", text)
        yield text


def phases_for(document: dict, role: str) -> str:
    """The phases that can find something with this document and token: fuzzing always (every operation gets at
    least one request); examples only where an operation has some; stateful only where an operation the caller
    gets past authentication with starts a link (a link from an operation that answers 401 is never followed).
    So the anonymous run, whose links all start behind authentication, fuzzes only."""
    ops = [op for ops in document["paths"].values() for op in ops.values()]
    reachable = [op for op in ops if role != "anonymous" or not op.get("security")]
    phases = ["fuzzing"]
    if any('"example' in text for text in schema_texts(document, reachable)):
        phases.insert(0, "examples")
    if any("links" in answer for op in reachable for answer in op["responses"].values()):
        phases.append("stateful")
    return ",".join(phases)


async def test_every_operation_as_every_role_answers_within_its_documented_schema(client, sessions, tmp_path):
    world = await accounts(client, sessions)
    world.actors["session_ender"] = await staff(sessions, client, "admin")
    spec = await (await client.get("/api/v1/openapi.json")).json()
    base = str(client.make_url("")).rstrip("/")
    excluded = [a for path in SESSION_ENDING for a in ("--exclude-path", path)]
    gate = asyncio.Semaphore(PARALLEL)
    runs = itertools.count()

    async def run(role: str, *extra: str, account: str | None = None,
                  phases: str | None = None) -> tuple[str, int, str, set[str], set[str]]:
        headers = world.actors[account or role].headers if role != "anonymous" else {}
        document = document_for(spec, role)
        workdir = tmp_path / f"{role}-{next(runs)}"
        workdir.mkdir()
        (workdir / "openapi.json").write_text(json.dumps(document, ensure_ascii=False))
        report = workdir / "events.ndjson"
        async with gate:
            rc, out = await schemathesis(base, workdir / "openapi.json", headers, report, *extra,
                                         phases=phases or phases_for(document, role))
        return role, rc, out, labels(document), operations_tested(report) if report.exists() else set()

    # every run at once (PARALLEL at a time), the longest first; the session-ending operations as an admin of
    # their own, whose sessions are the only ones they may end
    results = await asyncio.gather(
        run("anonymous", *excluded), *(run(role, *excluded) for role in ROLES),
        run("admin", *[a for path in SESSION_ENDING for a in ("--include-path", path)], account="session_ender",
            phases="examples,fuzzing"))  # no links among them to follow

    public_labels = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m, op in ops.items()
                     if not op.get("security")}
    assert SAME_FOR_EVERY_CALLER <= public_labels, sorted(SAME_FOR_EVERY_CALLER - public_labels)
    problems = [f"--- as {role} (exit {rc}) ---\n{failures(out)}" for role, rc, out, _, _ in results if rc != 0]
    assert problems == [], "\n".join(problems)
    session_ending = {f"{m.upper()} {p}" for p in SESSION_ENDING for m in spec["paths"].get(p, {})}
    assert session_ending and session_ending <= results[-1][4]
    for role, _, _, documented, tested in results[:-1]:
        # every operation of the role's document was exercised: one left out would pass silently
        assert documented - session_ending <= tested, (role, sorted(documented - session_ending - tested))
    # and together the runs cover every operation of the document, most of them as more than one role
    assert labels(spec) <= set().union(*(r[4] for r in results))
