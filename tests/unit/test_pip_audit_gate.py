"""The audit's fallback to PyPI's project pages (tests/security/pip_audit_gate.py): a package pip-audit could not look
up is audited from its project page only when it is installed at the latest release, whose advisories that page
lists; an older release, or no page, stays "not audited". PyPI is outside the platform, so its pages are given
here as PyPI serves them (the `fetch` the gate takes)."""
from tests.security import pip_audit_gate as gate

PAGES = {
    "aiohttp": {"info": {"version": "3.14.5"}, "vulnerabilities": []},
    "setuptools": {"info": {"version": "65.5.0"}, "vulnerabilities": [
        {"id": "PYSEC-2022-43012", "aliases": ["CVE-2022-40897", "GHSA-r9hx-vwmv-q579"], "fixed_in": ["65.5.1"],
         "details": "ReDoS in package_index.py", "link": "https://osv.dev/vulnerability/PYSEC-2022-43012"}]},
    "av": {"info": {"version": "19.0.2"}, "vulnerabilities": []},
}


def test_packages_at_their_latest_release_are_audited_from_the_project_page_and_older_ones_are_not():
    skipped = [{"name": "aiohttp", "version": "3.14.5", "skip_reason": "Dependency not found on PyPI"},
               {"name": "setuptools", "version": "65.5.0", "skip_reason": "Dependency not found on PyPI"},
               {"name": "av", "version": "18.1.0", "skip_reason": "Dependency not found on PyPI"},
               {"name": "gone", "version": "1.0", "skip_reason": "Dependency not found on PyPI"}]
    audited, unaudited = gate.audit_at_latest(skipped, fetch=PAGES.get)
    assert audited == [
        {"name": "aiohttp", "version": "3.14.5", "vulns": []},
        {"name": "setuptools", "version": "65.5.0", "vulns": [
            {"id": "PYSEC-2022-43012", "aliases": ["CVE-2022-40897", "GHSA-r9hx-vwmv-q579"],
             "fix_versions": ["65.5.1"]}]}]
    assert unaudited == ["av 18.1.0: the latest release is 19.0.2, and only the latest release's advisories are on "
                         "the project page", "gone 1.0: no project page"]


def test_a_skipped_entry_without_its_version_takes_the_installed_one():
    # pip-audit's entry for a package it skipped has no version field; the installed version is read instead
    from importlib import metadata
    installed = metadata.version("aiohttp")
    pages = {"aiohttp": {"info": {"version": installed}, "vulnerabilities": []}}
    audited, unaudited = gate.audit_at_latest([{"name": "aiohttp", "skip_reason": "not found"}], fetch=pages.get)
    assert audited == [{"name": "aiohttp", "version": installed, "vulns": []}] and unaudited == []


def test_an_advisory_found_on_a_project_page_fails_the_audit_unless_it_is_waived():
    report = [{"name": "bidroom", "version": "0.1.0", "skip_reason": "not on PyPI"},   # this project: left out
              {"name": "aiohttp", "version": "3.14.5", "vulns": []},                    # audited by pip-audit
              {"name": "setuptools", "version": "65.5.0", "skip_reason": "not found"},
              {"name": "av", "version": "18.1.0", "skip_reason": "not found"}]
    verdict = gate.judge(report, waived={}, fetch=PAGES.get)
    assert (verdict.total, verdict.audited) == (3, 2)
    assert verdict.found == ["setuptools 65.5.0: PYSEC-2022-43012 (fixed in 65.5.1)"] and verdict.excused == []
    assert verdict.unaudited == ["av 18.1.0: the latest release is 19.0.2, and only the latest release's advisories "
                                 "are on the project page"]
    # a waiver names any of the advisory's ids, for that package
    waived = gate.judge(report, waived={"CVE-2022-40897": "setuptools"}, fetch=PAGES.get)
    assert waived.found == [] and waived.excused == ["setuptools 65.5.0: PYSEC-2022-43012 (fixed in 65.5.1)"]
    assert gate.judge(report, waived={"CVE-2022-40897": "pip"}, fetch=PAGES.get).found == verdict.found
