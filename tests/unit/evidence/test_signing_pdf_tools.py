"""Every revision of a record is a sound PDF for outside tools: qpdf's structural check and poppler's pdffonts.

A record is rendered, then signed by several people and sealed, one incremental revision each. After every
revision the file must pass `qpdf --check` without a warning and `pdffonts` without an error on stderr. pdffonts
reported "xref num ... not found" on signed records: the signature stamp's font was written inline, and poppler
looks inline fonts up in the cross-reference table under a made-up number.

Needs qpdf and poppler-utils (the Makefile's DEBS).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from evidence.pki import Pki
from evidence.records import render_record
from evidence.signing import sign_once, verify_pdf
from tests.pdf_tools import THREE_SIGNERS_AND_SEAL, platform_pki, tool
from tests.unit.evidence.test_records_render import three_signer_record

SIGNERS = THREE_SIGNERS_AND_SEAL



@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return platform_pki(tmp_path_factory.mktemp("platform"))


@pytest.fixture(scope="module", params=[5, 120], ids=["one-page", "several-pages"])
async def revisions(request, pki, tmp_path_factory) -> list[Path]:
    """The rendered record, then the file after each signer and after the seal, written to disk."""
    data = render_record(three_signer_record(score_rows=request.param))
    out = [data]
    for spec in SIGNERS:
        out.append(await sign_once(out[-1], pki, spec))
    directory = tmp_path_factory.mktemp("revisions")
    paths = []
    for n, pdf in enumerate(out):
        path = directory / f"revision-{n}.pdf"
        path.write_bytes(pdf)
        paths.append(path)
    return paths


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_qpdf_check_is_clean_after_every_signature(revisions):
    assert len(revisions) == len(SIGNERS) + 1
    for path in revisions:
        run = _run(tool("qpdf"), "--check", str(path))
        output = run.stdout + run.stderr
        assert run.returncode == 0, (path.name, output)
        assert "No syntax or stream encoding errors found" in output, (path.name, output)
        assert "WARNING" not in output.upper(), (path.name, output)


def _font_rows(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    assert lines[0].startswith("name") and set(lines[1]) <= {"-", " "}, stdout
    return [line.split() for line in lines[2:] if line.strip()]


def test_pdffonts_reports_no_error_after_every_signature(revisions):
    for n, path in enumerate(revisions):
        run = _run(tool("pdffonts"), str(path))
        assert run.returncode == 0, (path.name, run.stderr)
        assert run.stderr == "", (path.name, run.stderr)
        rows = _font_rows(run.stdout)
        # The embedded CJK subset of the record, plus one stamp font per signature so far.
        assert sum(1 for r in rows if r[0].endswith("WenQuanYiZenHei-0")) == 1, run.stdout
        assert sum(1 for r in rows if r[0] == "Courier") == n, run.stdout
        # Every font is an object of its own, found through the cross-reference table.
        for row in rows:
            assert re.fullmatch(r"\d+", row[-2]) and row[-1] == "0", (path.name, row)


def test_each_revision_only_appends_to_the_one_before(revisions):
    """Incremental updates: every earlier revision is a byte-exact prefix of the next."""
    data = [p.read_bytes() for p in revisions]
    for before, after in zip(data, data[1:]):
        assert after.startswith(before) and len(after) > len(before)
        assert after.count(b"%%EOF") == before.count(b"%%EOF") + 1


def _startxref(pdf: bytes) -> int:
    return int(re.findall(rb"startxref\s+(\d+)\s+%%EOF\s*$", pdf)[-1])


def test_every_cross_reference_entry_points_at_its_object(revisions):
    """Walk the chain of xref tables of the sealed file: each in-use entry names the object found at its offset."""
    pdf = revisions[-1].read_bytes()
    offset: int | None = _startxref(pdf)
    sections = 0
    seen: set[int] = set()
    while offset is not None:
        assert pdf[offset:offset + 4] == b"xref", pdf[offset:offset + 40]
        sections += 1
        pos = offset + 4
        trailer_at = pdf.index(b"trailer", pos)
        lines = pdf[pos:trailer_at].split(b"\n")
        number = 0
        for line in (ln.strip() for ln in lines):
            if not line:
                continue
            parts = line.split()
            if len(parts) == 2:  # a subsection: first object number, count
                number = int(parts[0])
                continue
            where, generation, kind = int(parts[0]), int(parts[1]), parts[2]
            if kind == b"n" and number not in seen:  # a later revision's entry wins over an earlier one
                header = re.match(rb"\s*(\d+)\s+(\d+)\s+obj\b", pdf[where:where + 32])
                assert header, (number, where)
                assert (int(header[1]), int(header[2])) == (number, generation)
            seen.add(number)
            number += 1
        trailer = pdf[trailer_at:pdf.index(b"startxref", trailer_at)]
        prev = re.search(rb"/Prev\s+(\d+)", trailer)
        offset = int(prev[1]) if prev else None
    assert sections == len(SIGNERS) + 1


async def test_the_sealed_record_still_validates(pki, revisions):
    report = await verify_pdf(revisions[-1].read_bytes(), pki)
    assert report.valid and report.sealed
    assert len(report.signatures) == len(SIGNERS)
