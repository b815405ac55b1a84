"""Schema fuzzing: schemathesis, an outside tool, against a live server's own OpenAPI document, as every role.

The server is the application on a real TCP port; schemathesis runs as its command line does in CI, once per
role (anonymous, admin, agent, bidder, expert, supervisor), with a fixed seed and a bounded number of cases per
operation. The anonymous run covers every operation of the document; each role's run covers the operations the
role may call (`x-roles` in the document, and every operation without one), so every operation is fuzzed with
each token that gets past its role check. Every check but `positive_data_acceptance` runs: a request the
schema allows may still break a business rule (a 422 with a stable code is the documented answer). So each run
holds the document to what the issue asks: no 5xx, no response outside its documented schema, no undocumented
status code, no undocumented content type, a 405 for undeclared methods, and no operation that answers without
the authentication it declares.
"""
from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import sys
from pathlib import Path

from tests.security.world import ROLES, accounts

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261201
EXAMPLES = 1          # cases per operation per role and phase; the seed makes the run repeatable
PARALLEL = 3          # schemathesis processes at once
# operations that end the caller's own session: fuzzed by a run of their own, last, so that they do not sign out
# a role halfway through its run
SESSION_ENDING = ("/api/v1/admin/users/{user_id}/revoke-sessions",)


async def schemathesis(base: str, schema_file: Path, headers: dict, report: Path, *extra: str,
                       phases: str = "examples,fuzzing,stateful") -> tuple[int, str]:
    args = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(ROOT / "tests/security/schemathesis.toml"),
            "run", str(schema_file), "--url", base, "--seed", str(SEED), "--max-examples", str(EXAMPLES),
            "--phases", phases, "--checks", "all",
            "--exclude-checks", "positive_data_acceptance", "--workers", "1", "--no-shrink",
            "--request-timeout", "60", "--suppress-health-check", "all", "--warnings", "off",
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
    """The operations `role` may call (its own and the public ones); every other operation refuses it with 403
    role_forbidden before reading anything, which the anonymous run and the document's 403 rows already cover.
    Links to operations left out are dropped with them."""
    paths = {}
    for path, methods in spec["paths"].items():
        kept = {m: copy.deepcopy(op) for m, op in methods.items()
                if role == "anonymous" or role in op.get("x-roles", [role])}
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


async def test_every_operation_as_every_role_answers_within_its_documented_schema(client, sessions, tmp_path):
    world = await accounts(client, sessions)
    spec = await (await client.get("/api/v1/openapi.json")).json()
    base = str(client.make_url("")).rstrip("/")
    excluded = [a for path in SESSION_ENDING for a in ("--exclude-path", path)]
    gate = asyncio.Semaphore(PARALLEL)
    runs = itertools.count()

    async def run(role: str, *extra: str, **options) -> tuple[str, int, str, set[str], set[str]]:
        headers = world.actors[role].headers if role != "anonymous" else {}
        document = document_for(spec, role)
        workdir = tmp_path / f"{role}-{next(runs)}"
        workdir.mkdir()
        (workdir / "openapi.json").write_text(json.dumps(document, ensure_ascii=False))
        report = workdir / "events.ndjson"
        async with gate:
            rc, out = await schemathesis(base, workdir / "openapi.json", headers, report, *extra, **options)
        return role, rc, out, labels(document), operations_tested(report) if report.exists() else set()

    results = await asyncio.gather(*(run(role, *excluded) for role in ("anonymous", *ROLES)))
    # the session-ending operations, as the admin (whose own id is one the tool may pick up), last
    results.append(await run("admin", *[a for path in SESSION_ENDING for a in ("--include-path", path)],
                             phases="examples,fuzzing"))  # no links among them to follow

    problems = [f"--- as {role} (exit {rc}) ---\n{failures(out)}" for role, rc, out, _, _ in results if rc != 0]
    assert problems == [], "\n".join(problems)
    session_ending = {f"{m.upper()} {p}" for p in SESSION_ENDING for m in spec["paths"].get(p, {})}
    assert session_ending and session_ending <= results[-1][4]
    for role, _, _, documented, tested in results[:-1]:
        # every operation of the role's document was exercised: one left out would pass silently
        assert documented - session_ending <= tested, (role, sorted(documented - session_ending - tested))
    # and together the runs cover every operation of the document, most of them as more than one role
    assert labels(spec) <= set().union(*(r[4] for r in results))
