"""`make audit`: pip-audit over the installed dependencies, with dated waivers and a soft failure when offline.

- A known vulnerability that docs/SECURITY.md does not waive fails the target (exit 1).
- A waiver is a line `| <vulnerability id> | <package> | <YYYY-MM-DD expiry> | <reason> |` in the waiver table of
  docs/SECURITY.md; an expired waiver no longer counts.
- When pip-audit cannot reach its vulnerability service (no network, a mirror without the per-release JSON API),
  packages come back "not audited": the target says so plainly, with the count, and exits 0, so CI without network
  is not broken but nobody mistakes it for a clean audit.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY_MD = ROOT / "docs" / "SECURITY.md"
WAIVER = re.compile(r"^\|\s*(?P<id>[A-Z][A-Z0-9-]+-[\w-]+)\s*\|\s*(?P<package>[\w.-]+)\s*\|\s*"
                    r"(?P<expires>\d{4}-\d{2}-\d{2})\s*\|", re.M)


def waivers(today: dt.date) -> dict[str, str]:
    """Vulnerability id -> package, for the waivers in docs/SECURITY.md that have not expired."""
    text = SECURITY_MD.read_text(encoding="utf-8") if SECURITY_MD.exists() else ""
    return {m["id"]: m["package"].lower() for m in WAIVER.finditer(text)
            if dt.date.fromisoformat(m["expires"]) >= today}


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
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    waived = waivers(dt.date.today())
    found, excused = [], []
    for dep in deps:
        for vuln in dep.get("vulns", []):
            ids = {vuln["id"], *vuln.get("aliases", [])}
            line = f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {', '.join(vuln.get('fix_versions', [])) or '-'})"
            (excused if any(waived.get(i) == dep["name"].lower() for i in ids) else found).append(line)
    audited = len(deps) - len(skipped)
    print(f"audit: {audited} of {len(deps)} installed packages audited; {len(found)} vulnerabilities, "
          f"{len(excused)} waived in docs/SECURITY.md")
    for line in excused:
        print(f"  waived: {line}")
    for line in found:
        print(f"  VULNERABLE: {line}")
    if found:
        return 1
    if skipped:
        print(f"audit: WARNING {len(skipped)} packages could not be audited: pip-audit did not reach its "
              f"vulnerability service from here (e.g. {skipped[0]['name']}: {skipped[0]['skip_reason']}). "
              "This is not a clean audit; run `make audit` where pypi.org or osv.dev is reachable.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
