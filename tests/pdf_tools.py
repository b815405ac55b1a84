"""Shared pieces for tests that check records with outside PDF tools (poppler's pdfsig and pdffonts, qpdf, NSS's
certutil): the tool lookup, the test records' signers and a platform PKI in a temporary directory."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from evidence.pki import Pki
from evidence.records import signature_field_name
from evidence.signing import SignerSpec

# three people with Chinese names, then the platform's seal, as on a real record
THREE_SIGNERS_AND_SEAL = [SignerSpec.person(signature_field_name(0), "U-ZW0001", "张伟"),
                          SignerSpec.person(signature_field_name(1), "U-LN0002", "李娜"),
                          SignerSpec.person(signature_field_name(2), "U-OY0003", "欧阳娜娜"),
                          SignerSpec.seal()]


def tool(name: str) -> str:
    """The path of an outside tool, which the Makefile's DEBS install (qpdf, poppler-utils, libnss3-tools)."""
    path = shutil.which(name)
    assert path, f"{name} is not installed (Debian packages qpdf, poppler-utils, libnss3-tools: the Makefile's DEBS)"
    return path


def platform_pki(directory: Path) -> Pki:
    return Pki.load_or_create(directory / "keys" / "pki", public_url="https://bidroom.example.cn")


def pdfsig(path: Path, *extra: str) -> str:
    run = subprocess.run([tool("pdfsig"), *extra, str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def pdfsig_sections(output: str) -> list[str]:
    """pdfsig's output split into one section per signature, in signing order."""
    return re.split(r"^Signature #\d+:", output, flags=re.M)[1:]
