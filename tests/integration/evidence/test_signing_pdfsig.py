"""Records validate with standard tools: poppler's pdfsig (NSS) checks the signatures, pdffonts the CJK font.

Needs poppler-utils (pdfsig, pdffonts) and, for the trust check, certutil from Debian's libnss3-tools.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from evidence.pki import Pki
from evidence.records import render_record
from evidence.signing import sign_record
from tests.pdf_tools import THREE_SIGNERS_AND_SEAL, pdfsig, pdfsig_sections, platform_pki, tool
from tests.unit.evidence.test_records_render import three_signer_record

SIGNERS = THREE_SIGNERS_AND_SEAL



@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return platform_pki(tmp_path_factory.mktemp("platform"))


@pytest.fixture(scope="module")
async def signed_file(pki, tmp_path_factory) -> Path:
    pdf = await sign_record(render_record(three_signer_record()), pki, SIGNERS)
    path = tmp_path_factory.mktemp("records") / "PB-2026-000123.pdf"
    path.write_bytes(pdf)
    return path




def test_pdfsig_finds_every_signature_valid(signed_file):
    sections = pdfsig_sections(pdfsig(signed_file))
    assert len(sections) == len(SIGNERS)
    for section in sections:
        assert "Signature Validation: Signature is Valid." in section
    assert "Total document signed" in sections[-1]


def test_pdfsig_trusts_every_signer_once_the_platform_root_is_in_nss(pki, signed_file, tmp_path):
    nss = tmp_path / "nss"
    nss.mkdir()
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root_cert_pem())
    certutil = tool("certutil")
    subprocess.run([certutil, "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
    subprocess.run([certutil, "-A", "-d", f"sql:{nss}", "-n", "bidroom-root", "-t", "CT,C,C", "-i", str(root)],
                   check=True, capture_output=True)
    output = pdfsig(signed_file, "-nssdir", f"sql:{nss}")
    sections = pdfsig_sections(output)
    assert len(sections) == len(SIGNERS)
    for section in sections:
        assert "Signature Validation: Signature is Valid." in section
        assert "Certificate Validation: Certificate is Trusted." in section
    for name in ("张伟", "李娜", "欧阳娜娜"):
        assert f"Signer Certificate Common Name: {name}" in output


def test_poppler_sees_the_cjk_font_embedded_as_a_truetype_subset(signed_file):
    run = subprocess.run([tool("pdffonts"), str(signed_file)], capture_output=True, text=True, timeout=60,
                         check=True)
    rows = run.stdout.splitlines()[2:]
    cjk = [r for r in rows if "WenQuanYiZenHei" in r]
    assert cjk, run.stdout
    for row in cjk:
        assert re.search(r"TrueType\s+\S+\s+yes\s+yes", row), row
