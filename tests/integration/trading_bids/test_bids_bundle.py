"""The bid bundle format and how one stored bid opens (no database needed)."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from decimal import Decimal

import pyrage
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.errors import Unprocessable
from evidence import sealing
from trading import keyholding
from trading.bundle import BundleScanner, form_from_head, make_bundle, read_bundle
from trading.opening import REVOKED, WITHDRAWN, open_stored_bid


def test_a_bundle_reads_back_its_form_and_documents():
    data = make_bundle({"price": "1234.50", "duration_days": 90, "declared": {"质量标准": "合格"}},
                       {"投标函.pdf": b"%PDF-1.7 a", "资格证明.pdf": b"%PDF-1.7 bb"})
    opened = read_bundle(data)
    assert opened.form.price == Decimal("1234.50") and opened.form.declared == {"质量标准": "合格"}
    assert [(d.name, d.size) for d in opened.documents] == [("投标函.pdf", 10), ("资格证明.pdf", 11)]
    assert opened.documents[0].sha256 == hashlib.sha256(b"%PDF-1.7 a").hexdigest()


def test_the_form_is_checked_from_the_first_bytes_of_a_stream():
    data = make_bundle({"price": "-5", "duration_days": 90})
    assert form_from_head(data[:300]) is None
    with pytest.raises(Unprocessable) as caught:
        form_from_head(data[:2048])
    assert caught.value.code == "invalid_price"


def test_a_bundle_made_with_the_tar_tool_is_accepted(tmp_path):
    (tmp_path / "form.json").write_text(json.dumps({"price": 880000, "duration_days": 30}))
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "报价.pdf").write_bytes(b"%PDF-1.4 x")
    subprocess.run(["tar", "cf", "bid.tar", "form.json", "documents"], cwd=tmp_path, check=True)
    opened = read_bundle((tmp_path / "bid.tar").read_bytes())
    assert opened.form.price == Decimal("880000.00") and [d.name for d in opened.documents] == ["报价.pdf"]


def _tar(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(data.get(info.name, b"")))
    return out.getvalue()


def test_bundles_must_start_with_the_form_and_hold_only_documents():
    form = json.dumps({"price": "1.00", "duration_days": 1}).encode()
    first = tarfile.TarInfo("documents/a.pdf")
    first.size = 3
    with pytest.raises(Unprocessable) as caught:
        read_bundle(_tar([first], {"documents/a.pdf": b"abc"}))
    assert caught.value.code == "invalid_bid_bundle"
    head = tarfile.TarInfo("form.json")
    head.size = len(form)
    link = tarfile.TarInfo("documents/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(Unprocessable) as caught:
        read_bundle(_tar([head, link], {"form.json": form}))
    assert caught.value.code == "bundle_member_not_allowed"
    assert caught.value.details["reason"] == "symbolic_link"


def test_the_platform_keyring_opens_only_what_it_sealed_for_the_same_place():
    ring = keyholding.PlatformKeyring(b"m" * 32)
    sealed = ring.seal(b"share", context="opening_share:1")
    assert ring.open(sealed, context="opening_share:1") == b"share"
    with pytest.raises(Unprocessable):
        ring.open(sealed, context="opening_share:2")
    with pytest.raises(Unprocessable):
        keyholding.PlatformKeyring(b"x" * 32).open(sealed, context="opening_share:1")


@pytest.fixture(scope="module")
def tender_key():
    return sealing.new_tender_identity()


def _seal(data: bytes, recipient: str) -> bytes:
    """Sealed the way a bidder's age client seals to a published recipient."""
    return pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(recipient)])


def _store(tmp_path, data: bytes):
    path = tmp_path / "bid.age"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _why(outcome) -> tuple[str | None, str | None]:
    return outcome.kind, outcome.cause


def test_a_good_bid_opens(tmp_path, tender_key):
    identity, recipient = tender_key
    path, digest = _store(tmp_path, _seal(make_bundle({"price": "9.99", "duration_days": 2}), recipient))
    outcome = open_stored_bid(path, digest, "server", identity)
    assert outcome.bundle.form.price == Decimal("9.99") and outcome.kind is None


def test_a_missing_or_altered_file_is_withdrawn_as_not_the_bidders_doing(tmp_path, tender_key):
    identity, recipient = tender_key
    path, digest = _store(tmp_path, _seal(make_bundle({"price": "9.99", "duration_days": 2}), recipient))
    assert _why(open_stored_bid(tmp_path / "gone.age", digest, "client", identity)) == (WITHDRAWN,
                                                                                      "stored_ciphertext_missing")
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    assert _why(open_stored_bid(path, digest, "client", identity)) == (WITHDRAWN, "stored_ciphertext_damaged")


def test_a_bidders_bad_seal_or_bad_form_is_revoked(tmp_path, tender_key):
    identity, recipient = tender_key
    _, other = sealing.new_tender_identity()
    path, digest = _store(tmp_path, _seal(b"whatever", other))
    assert _why(open_stored_bid(path, digest, "client", identity)) == (REVOKED, "undecryptable")
    assert _why(open_stored_bid(path, digest, "server", identity)) == (WITHDRAWN, "undecryptable")
    path, digest = _store(tmp_path, _seal(make_bundle({"price": "0", "duration_days": 2}), recipient))
    assert _why(open_stored_bid(path, digest, "client", identity)) == (REVOKED, "invalid_price")


_names = st.text(alphabet="abcXYZ019-_.投标函资格证明报价", min_size=1, max_size=150).filter(
    lambda n: n not in (".", "..") and not n.startswith("."))


@settings(max_examples=60, deadline=None)
@given(documents=st.dictionaries(_names, st.binary(max_size=3000), max_size=6),
       fmt=st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
       chunk=st.integers(min_value=1, max_value=5000))
def test_the_streaming_scanner_reads_what_tarfile_reads_whatever_the_chunking(documents, fmt, chunk):
    """Bundles written by Python's tarfile in each format (long names take pax records or GNU long-name members)
    read back the same through the scanner, fed in chunks of any size, as through tarfile itself."""
    form = json.dumps({"price": "10.00", "duration_days": 5}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in [("form.json", form), *(("documents/" + n, d) for n, d in documents.items())]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1.5
            try:
                tar.addfile(info, io.BytesIO(data))
            except ValueError:  # a name too long for plain ustar
                assume(False)
    raw = out.getvalue()
    scanner = BundleScanner()
    for i in range(0, len(raw), chunk):
        scanner.feed(raw[i:i + chunk])
    opened = scanner.finish()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        expected = [(m.name[len("documents/"):], m.size, hashlib.sha256(tar.extractfile(m).read()).hexdigest())
                    for m in tar.getmembers()[1:]]
    assert [(d.name, d.size, d.sha256) for d in opened.documents] == expected
    assert opened.form.price == Decimal("10.00")
