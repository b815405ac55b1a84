"""`make audit`: pip-audit over the installed dependencies, with dated waivers and a soft failure when offline.

- A known vulnerability that docs/SECURITY.md does not waive fails the target (exit 1).
- A waiver is a line `| <vulnerability id> | <package> | <YYYY-MM-DD expiry> | <reason> |` in the waiver table of
  docs/SECURITY.md; an expired waiver no longer counts.
- pip-audit asks PyPI for each release's advisories (`/pypi/<name>/<version>/json`). Where that answers 404 (a
  package mirror that serves only the project pages), a package pip-audit skipped is looked up once more on its
  project page (`/pypi/<name>/json`), whose `vulnerabilities` are those of the project's latest release, from the
  same advisory database: a package installed at its latest release is audited from there. One installed at an
  older release stays "not audited", named with both versions.
- When nothing can be reached, packages come back "not audited": the target says so plainly, with the count, and
  exits 0, so CI without network is not broken but nobody mistakes it for a clean audit.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_URL = "https://pypi.org/pypi/{name}/json"
OWN_PROJECT = "bidroom"   # installed from this checkout, not from PyPI: nothing to look up
SECURITY_MD = ROOT / "docs" / "SECURITY.md"
WAIVER = re.compile(r"^\|\s*(?P<id>[A-Z][A-Z0-9-]+-[\w-]+)\s*\|\s*(?P<package>[\w.-]+)\s*\|\s*"
                    r"(?P<expires>\d{4}-\d{2}-\d{2})\s*\|", re.M)


def waivers(today: dt.date) -> dict[str, str]:
    """Vulnerability id -> package, for the waivers in docs/SECURITY.md that have not expired."""
    text = SECURITY_MD.read_text(encoding="utf-8") if SECURITY_MD.exists() else ""
    return {m["id"]: m["package"].lower() for m in WAIVER.finditer(text)
            if dt.date.fromisoformat(m["expires"]) >= today}


def fetch_project(name: str) -> dict | None:
    """PyPI's project page as JSON, or None if it cannot be had."""
    try:
        with urllib.request.urlopen(PROJECT_URL.format(name=urllib.parse.quote(name)), timeout=20) as resp:
            return json.load(resp)
    except (OSError, ValueError):
        return None


def audit_at_latest(skipped: list[dict], fetch: Callable[[str], dict | None] = fetch_project
                    ) -> tuple[list[dict], list[str]]:
    """For the packages pip-audit skipped: those installed at their project's latest release, as pip-audit's report
    entries with that release's advisories; and a line for each that stays unaudited."""
    # pip-audit's entry for a skipped package names it but gives its version only inside the reason
    skipped = [{**dep, "version": dep.get("version") or metadata.version(dep["name"])} for dep in skipped]
    with ThreadPoolExecutor(max_workers=8) as pool:
        pages = list(pool.map(lambda dep: fetch(dep["name"]), skipped))
    audited, unaudited = [], []
    for dep, page in zip(skipped, pages):
        latest = (page or {}).get("info", {}).get("version")
        if page is None or latest is None:
            unaudited.append(f"{dep['name']} {dep['version']}: no project page")
        elif latest != dep["version"]:
            unaudited.append(f"{dep['name']} {dep['version']}: the latest release is {latest}, and only the "
                             "latest release's advisories are on the project page")
        else:
            vulns = [{"id": v["id"], "aliases": v.get("aliases") or [], "fix_versions": v.get("fixed_in") or []}
                     for v in page.get("vulnerabilities") or []]
            audited.append({"name": dep["name"], "version": dep["version"], "vulns": vulns})
    return audited, unaudited


@dataclass
class Verdict:
    total: int              # installed packages, this project left out
    unaudited: list[str]    # a line each for those nobody could audit
    found: list[str]        # a line each for the vulnerabilities not waived: these fail the target
    excused: list[str]      # and those waived in docs/SECURITY.md

    @property
    def audited(self) -> int:
        return self.total - len(self.unaudited)


def judge(deps: list[dict], waived: dict[str, str],
          fetch: Callable[[str], dict | None] = fetch_project) -> Verdict:
    """pip-audit's report entries judged: those it skipped looked up on their project pages (audit_at_latest),
    then every advisory of every audited package found or, if docs/SECURITY.md waives it, excused."""
    deps = [d for d in deps if d["name"].lower() != OWN_PROJECT]
    skipped = [d for d in deps if d.get("skip_reason")]
    unaudited: list[str] = []
    if skipped:
        rescued, unaudited = audit_at_latest(skipped, fetch)
        names = {r["name"] for r in rescued}
        deps = [d for d in deps if d["name"] not in names] + rescued
    found, excused = [], []
    for dep in deps:
        for vuln in dep.get("vulns", []):
            ids = {vuln["id"], *vuln.get("aliases", [])}
            line = f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {', '.join(vuln.get('fix_versions', [])) or '-'})"
            (excused if any(waived.get(i) == dep["name"].lower() for i in ids) else found).append(line)
    return Verdict(len(deps), unaudited, found, excused)


def main() -> int:
    cmd = [sys.executable, "-m", "pip_audit", "--local", "--format", "json", "--progress-spinner", "off",
           "--timeout", "20"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"audit: WARNING pip-audit could not run or reach its vulnerability service ({tail[0]}); "
              "the dependencies were NOT audited")
        return 0
    verdict = judge(report.get("dependencies", []), waivers(dt.date.today()))
    print(f"audit: {verdict.audited} of {verdict.total} installed packages audited; {len(verdict.found)} "
          f"vulnerabilities, {len(verdict.excused)} waived in docs/SECURITY.md")
    for line in verdict.excused:
        print(f"  waived: {line}")
    for line in verdict.found:
        print(f"  VULNERABLE: {line}")
    if verdict.found:
        return 1
    if verdict.unaudited:
        print(f"audit: WARNING {len(verdict.unaudited)} packages could not be audited: neither pip-audit's "
              "vulnerability service nor the project pages had their release's advisories. This is not a clean "
              "audit of them; run `make audit` where pypi.org's per-release pages or osv.dev are reachable.")
        for line in verdict.unaudited:
            print(f"  not audited: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
