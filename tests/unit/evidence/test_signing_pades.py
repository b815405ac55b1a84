"""PAdES signatures on records: sequential signers then the seal, validated offline against the pinned root."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from io import BytesIO

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from core.errors import Conflict, Unprocessable
from evidence.pki import Pki, load_certificate
from evidence.records import SEAL_FIELD, RecordDocument, render_record, signature_field_name
from evidence.signing import SignatureReport, SignerSpec, sign_once, sign_record, verify_pdf
from tests.unit.evidence.test_records_render import three_signer_record

PUBLIC_URL = "https://bidroom.example.cn"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki.load_or_create(tmp_path_factory.mktemp("platform") / "keys" / "pki", public_url=PUBLIC_URL)


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory) -> Pki:
    return Pki.load_or_create(tmp_path_factory.mktemp("impostor") / "keys" / "pki", public_url=PUBLIC_URL)


@pytest.fixture(scope="module")
def rendered() -> bytes:
    return render_record(three_signer_record())


def _experts() -> list[SignerSpec]:
    return [SignerSpec.person(signature_field_name(0), "U-ZW0001", "张伟"),
            SignerSpec.person(signature_field_name(1), "U-LN0002", "李娜")]


@pytest.fixture(scope="module")
async def revisions(pki, rendered) -> list[bytes]:
    """The rendered PDF, then the file after each of: 张伟, 李娜, the platform seal."""
    out = [rendered]
    for spec in [*_experts(), SignerSpec.seal()]:
        out.append(await sign_once(out[-1], pki, spec))
    return out


@pytest.fixture(scope="module")
def signed(revisions) -> bytes:
    return revisions[-1]


async def test_two_experts_then_the_seal_all_validate_against_the_platform_root(pki, signed):
    report = await verify_pdf(signed, pki)
    assert report.valid and report.sealed
    assert [s.signer_name for s in report.signatures] == ["张伟", "李娜", "bidroom 平台电子签章 Platform Seal"]
    assert [s.signer_public_id for s in report.signatures] == ["U-ZW0001", "U-LN0002", None]
    for sig in report.signatures:
        assert sig.intact and sig.valid and sig.trusted
        assert sig.timestamp_valid and sig.timestamp_time is not None
        assert sig.has_validation_data
        assert sig.bottom_line
        assert sig.signing_time.tzinfo is not None
    assert [s.coverage for s in report.signatures] == ["entire_revision", "entire_revision", "entire_file"]


async def test_signing_times_follow_the_signing_order(pki, signed):
    times = [s.timestamp_time for s in (await verify_pdf(signed, pki)).signatures]
    assert times == sorted(times)


async def test_sign_record_applies_the_signers_in_the_order_given(pki, rendered):
    signed = await sign_record(rendered, pki, [*_experts(), SignerSpec.seal()])
    report = await verify_pdf(signed, pki)
    assert report.valid
    assert [s.field_name for s in report.signatures] == ["signer-1", "signer-2", SEAL_FIELD]


def test_each_signature_only_appends_to_the_file(revisions):
    for before, after in zip(revisions, revisions[1:]):
        assert after.startswith(before)
        assert len(after) > len(before)


async def test_signatures_validate_from_embedded_data_with_only_the_root_pinned(pki, signed):
    root_only = load_certificate(pki.root_cert_pem())
    report = await verify_pdf(signed, root_only)
    assert report.valid
    assert all(s.trusted and s.timestamp_valid for s in report.signatures)


def _first_stream_body(pdf: bytes) -> tuple[int, int]:
    match = re.search(rb"stream\r?\n", pdf)
    end = pdf.index(b"endstream", match.end())
    return match.end(), end


async def test_one_flipped_byte_in_the_first_revision_breaks_every_signature(pki, rendered, signed):
    start, end = _first_stream_body(rendered)
    position = (start + end) // 2
    tampered = bytearray(signed)
    tampered[position] ^= 0x01
    report = await verify_pdf(bytes(tampered), pki)
    assert len(report.signatures) == 3
    assert not report.valid
    assert all(not s.intact and not s.bottom_line for s in report.signatures)


async def test_content_added_after_the_seal_invalidates_the_record(pki, signed):
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    forged = writer.add_object(generic.StreamObject(stream_data=b"BT 100 400 Td (PAID IN FULL) Tj ET"))
    contents = page["/Contents"]
    existing = list(contents) if isinstance(contents, generic.ArrayObject) else [contents]
    page["/Contents"] = generic.ArrayObject([*existing, forged])
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    report = await verify_pdf(out.getvalue(), pki)
    assert not report.valid
    # The signed bytes themselves are untouched, but what was appended is not a signature or its validation data.
    assert all(s.intact for s in report.signatures)
    assert all(s.modification_level == "other" and not s.bottom_line for s in report.signatures)


async def test_a_different_platform_root_trusts_none_of_the_signatures(other_pki, signed):
    for trust in (other_pki, other_pki.root_certificate):
        report = await verify_pdf(signed, trust)
        assert not report.valid
        assert all(s.intact and not s.trusted and not s.bottom_line for s in report.signatures)


async def test_unsigned_record_verifies_as_not_signed(pki, rendered):
    report = await verify_pdf(rendered, pki)
    assert not report.signed and not report.valid
    assert report.as_dict() == {"signed": False, "valid": False, "sealed": False, "signatures": []}


async def test_a_record_signed_only_by_experts_is_valid_but_not_yet_sealed(pki, revisions):
    report = await verify_pdf(revisions[2], pki)
    assert report.valid and not report.sealed


@pytest.mark.parametrize("data", [b"", b"hello, world", b"\x89PNG\r\n\x1a\n" + bytes(100), "not bytes"])
async def test_non_pdf_input_is_refused_as_not_a_pdf(pki, data):
    with pytest.raises(Unprocessable) as verify_err:
        await verify_pdf(data, pki)
    assert verify_err.value.code == "not_a_pdf" and verify_err.value.status == 422
    with pytest.raises(Unprocessable) as sign_err:
        await sign_once(data, pki, SignerSpec.seal())
    assert sign_err.value.code == "not_a_pdf"


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
async def test_truncated_pdf_is_refused_as_malformed(pki, signed, keep):
    truncated = signed[: int(len(signed) * keep)]
    with pytest.raises(Unprocessable) as verify_err:
        await verify_pdf(truncated, pki)
    assert verify_err.value.code == "malformed_pdf"
    with pytest.raises(Unprocessable) as sign_err:
        await sign_once(truncated, pki, SignerSpec.seal())
    assert sign_err.value.code == "malformed_pdf"


async def test_a_signed_field_cannot_be_signed_again(pki, revisions):
    with pytest.raises(Conflict) as err:
        await sign_once(revisions[1], pki, SignerSpec.person(signature_field_name(0), "U-LN0002", "李娜"))
    assert err.value.code == "already_signed"


async def test_nobody_signs_after_the_platform_seal(pki, signed):
    with pytest.raises(Conflict) as err:
        await sign_once(signed, pki, SignerSpec.person(signature_field_name(2), "U-OY0003", "欧阳娜娜"))
    assert err.value.code == "record_sealed"


async def test_an_unusable_signer_id_is_refused(pki, rendered):
    with pytest.raises(Unprocessable) as err:
        await sign_once(rendered, pki, SignerSpec.person(signature_field_name(0), "../etc", "张伟"))
    assert err.value.code == "invalid_signer"


async def test_a_record_without_a_signature_table_can_still_be_sealed(pki):
    bare = render_record(RecordDocument(record_no="KB-2026-000009", kind="opening_record",
                                        title_zh="开标记录", title_en="Bid Opening Record"))
    report = await verify_pdf(await sign_record(bare, pki, [SignerSpec.seal()]), pki)
    assert report.valid and [s.field_name for s in report.signatures] == [SEAL_FIELD]


def test_report_serialises_times_as_utc_strings():
    sig = SignatureReport(field_name="signer-1", signer_name="张伟", signer_public_id="U-ZW0001",
                          signer_subject="CN=张伟", signing_time=datetime(2026, 11, 25, 6, 30, tzinfo=timezone.utc),
                          timestamp_time=None, intact=True, valid=True, trusted=True, coverage="entire_file",
                          modification_level="none", timestamp_valid=False, has_validation_data=True,
                          bottom_line=False)
    assert sig.as_dict()["signing_time"] == "2026-11-25T06:30:00Z"
