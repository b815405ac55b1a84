"""PAdES signatures on records: sequential approval signatures by people, then the platform seal, and validation.

Each signature is PAdES B-T (an RFC 3161 timestamp from the platform TSA inside the signature) brought to B-LT by
a DSS holding the certificates and the CRL needed to validate it offline. The DSS is written in the same
incremental revision as its signature, so every later signer and the seal only ever append to the file: the
rendered bytes and every earlier revision stay exactly as they were. pyHanko's async API only, so signing and
validation can run inside the aiohttp event loop.
"""
from __future__ import annotations

import logging
import zlib
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from io import BytesIO
from typing import Any, Iterator, Sequence

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import filters as _pdf_filters
from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.decode_limits import DecodeLimits, StreamDecodeLimits
from pyhanko.pdf_utils.font.basic import SimpleFontEngine, SimpleFontEngineFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from core.errors import Conflict, Unprocessable
from evidence.pki import Pki
from evidence.records import SEAL_FIELD

log = logging.getLogger(__name__)

MAX_HEADER_OFFSET = 1024  # PDF readers accept junk before %PDF- within the first KiB
# An uploaded PDF is refused (422) before its signatures are looked at when it has more signature fields or
# revisions than any record: an evaluation report has one field per member and the seal (10 for a committee of
# 9), and one revision per signature.
MAX_SIGNATURE_FIELDS = 64
MAX_REVISIONS = 2 * MAX_SIGNATURE_FIELDS
# What the streams of one PDF may inflate to, all together, while it is read and validated. Our records are
# written uncompressed and validating one inflates nothing; a deflate bomb stops here with 422 instead of
# filling memory. pyHanko has limits of its own (0.38 on: 256 MiB a stream and a document, lower for some
# structures), but its reader takes a stream over them for damage and goes on; the budget here is what turns a
# bomb into a 422 wherever pyHanko meets it (DECODE_LIMITS below).
MAX_INFLATED_BYTES = 64 * 1024 * 1024


# ---- a cap on inflation -----------------------------------------------------------------------------------

class InflateLimitExceeded(ValueError):
    """A stream would inflate beyond what is left of the budget."""


@dataclass
class InflateBudget:
    """Bytes the streams of one document may still inflate to; `exceeded` stays set once the cap was hit, even
    if the parser caught the error and went on."""

    limit: int
    used: int = 0
    exceeded: bool = False

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


_INFLATE_BUDGET: ContextVar[InflateBudget | None] = ContextVar("inflate_budget", default=None)


def _bounded_decompress(data, max_output_size: int | None = None) -> bytes:
    """Inflate within what is left of the current budget (or MAX_INFLATED_BYTES for one stream outside a budget),
    and within pyHanko's own cap for the stream when it gives one; incrementally, so the cap holds for memory too.
    Over the budget: InflateLimitExceeded, and the budget remembers it even if the reader catches the error."""
    budget = _INFLATE_BUDGET.get()
    limit = budget.remaining if budget is not None else MAX_INFLATED_BYTES
    if max_output_size is not None and max_output_size < limit:
        limit = max_output_size
    inflater = zlib.decompressobj()
    out = inflater.decompress(bytes(data), limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        if budget is not None:
            budget.exceeded = True
            budget.used = budget.limit
        raise InflateLimitExceeded(f"a stream inflates beyond {limit} bytes")
    if not inflater.eof:
        raise zlib.error("Error -5 while decompressing data: incomplete or truncated stream")
    if budget is not None:
        budget.used += len(out)
    return out


# pyHanko's FlateDecode inflates through its module's `_bounded_decompress(data, max_output_size)` (pyHanko 0.38,
# pinned in pyproject.toml): every stream pyHanko inflates goes through the budget. A pyHanko that inflates some
# other way fails here, at import, rather than letting bombs through (tests/unit/evidence/test_inflate_cap.py).
if not callable(getattr(_pdf_filters, "_bounded_decompress", None)):
    raise ImportError("pyhanko.pdf_utils.filters no longer inflates through _bounded_decompress: attach "
                      "evidence.signing's inflation budget to this pyHanko's inflater")
_pdf_filters._bounded_decompress = _bounded_decompress
# The decode limits the reader is opened with: every filter's output capped at MAX_INFLATED_BYTES a stream (the
# other filters than Flate, LZW say, stop there too), and no lower caps for particular structures, so that a
# Flate bomb anywhere meets the budget above and is refused with 422 rather than taken for damage.
DECODE_LIMITS = DecodeLimits(per_stream=StreamDecodeLimits(max_ratio=None, max_output_size=MAX_INFLATED_BYTES),
                             per_purpose={}, document_budget=None)


@contextmanager
def inflate_budget(limit: int = MAX_INFLATED_BYTES) -> Iterator[InflateBudget]:
    """Cap what all streams inflate to inside the block (per task: a context variable)."""
    budget = InflateBudget(limit)
    token = _INFLATE_BUDGET.set(budget)
    try:
        yield budget
    finally:
        _INFLATE_BUDGET.reset(token)


def _too_much_inflation(budget: InflateBudget) -> Unprocessable:
    return Unprocessable("the PDF's compressed streams inflate beyond the limit", code="pdf_inflates_too_much",
                         details={"limit_bytes": budget.limit})


class _IndirectFontEngine(SimpleFontEngine):
    """Courier written as an indirect object rather than inline in the stamp's resource dictionary.

    pyHanko inlines the font dictionary. That is legal PDF, but poppler identifies an inline font by a hash posing
    as an object number, and its font scanner then looks that number up in the cross-reference table: `pdffonts`
    prints "xref num ... not found but needed" for every signed revision although the xref itself is sound.
    """

    def as_resource(self) -> generic.IndirectObject:
        return self.writer.add_object(super().as_resource())


class _IndirectFontFactory(SimpleFontEngineFactory):
    def create_font_engine(self, writer, obj_stream=None) -> _IndirectFontEngine:
        return _IndirectFontEngine(writer, self.name, self.avg_width, self.meta)


_COURIER = SimpleFontEngineFactory.default_factory()
# The stamp uses a standard PDF font, which has no CJK glyphs: the names are printed in the table beside it.
_STAMP_STYLE = TextStampStyle(
    stamp_text="Digitally signed by %(who)s\n%(ts)s",
    timestamp_format="%Y-%m-%d %H:%M:%S %Z",
    text_box_style=TextBoxStyle(font=_IndirectFontFactory(_COURIER.name, _COURIER.avg_width, _COURIER.meta),
                                font_size=7),
    border_width=0,
)
# DSS in the signature's own revision (needs VRI off): PAdES B-LT in one revision per signer.
_DSS_SETTINGS = DSSContentSettings(include_vri=False,
                                   placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE)


@dataclass(frozen=True)
class SignerSpec:
    """Who signs next and into which signature field of the record."""

    field_name: str
    # None means the platform seal; otherwise the person's public id and name as on their certificate.
    public_id: str | None = None
    name: str | None = None
    reason: str | None = None
    location: str | None = None

    @classmethod
    def person(cls, field_name: str, public_id: str, name: str, *, reason: str | None = None,
               location: str | None = None) -> "SignerSpec":
        """An expert, agent or supervisor signing with their own certificate."""
        return cls(field_name=field_name, public_id=public_id, name=name, reason=reason, location=location)

    @classmethod
    def seal(cls, *, reason: str | None = "Platform seal", location: str | None = None) -> "SignerSpec":
        """The platform seal, applied last."""
        return cls(field_name=SEAL_FIELD, reason=reason, location=location)

    @property
    def is_seal(self) -> bool:
        return self.public_id is None


@dataclass(frozen=True)
class SignatureReport:
    """The verdict on one signature, in the order the signatures were made."""

    field_name: str
    signer_name: str | None
    signer_public_id: str | None
    signer_subject: str | None
    signing_time: datetime | None  # from the TSA token when there is one, else as claimed by the signer
    timestamp_time: datetime | None
    intact: bool
    valid: bool
    trusted: bool
    coverage: str  # entire_file | entire_revision | partial | unknown
    modification_level: str | None  # none | lta_updates | form_filling | annotations | other
    timestamp_valid: bool
    has_validation_data: bool  # DSS present for offline (B-LT) validation
    bottom_line: bool  # pyHanko's verdict, and additionally a valid trusted timestamp (we promise B-T or better)
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("signing_time", "timestamp_time"):
            if d[k] is not None:
                d[k] = d[k].astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        return d


@dataclass(frozen=True)
class VerificationReport:
    """All signatures of one PDF, and whether together they vouch for the whole file."""

    signatures: list[SignatureReport] = field(default_factory=list)

    @property
    def signed(self) -> bool:
        return bool(self.signatures)

    @property
    def valid(self) -> bool:
        """True when signed, every signature holds, and nothing but validation data follows the last one."""
        if not self.signatures or not all(s.bottom_line for s in self.signatures):
            return False
        last = self.signatures[-1]
        return last.coverage == "entire_file" or last.modification_level in ("none", "lta_updates")

    @property
    def sealed(self) -> bool:
        """True when the record is valid and its last signature is the platform seal (定稿)."""
        last = self.signatures[-1] if self.signatures else None
        # Only the seal's certificate lacks a person's public id; the field name alone could be chosen by anyone.
        return self.valid and last.field_name == SEAL_FIELD and last.signer_public_id is None

    def as_dict(self) -> dict[str, Any]:
        return {"signed": self.signed, "valid": self.valid, "sealed": self.sealed,
                "signatures": [s.as_dict() for s in self.signatures]}


# ---- reading ----------------------------------------------------------------------------------------------

def check_pdf_header(pdf: bytes) -> None:
    """422 not_a_pdf unless `%PDF-` appears within the first KiB."""
    if not isinstance(pdf, (bytes, bytearray, memoryview)) or b"%PDF-" not in bytes(pdf[:MAX_HEADER_OFFSET]):
        raise Unprocessable("the file is not a PDF", code="not_a_pdf")


def _open_reader(pdf: bytes) -> PdfFileReader:
    """Parse the PDF, turning every parser failure into a 422 the user can act on."""
    check_pdf_header(pdf)
    try:
        reader = PdfFileReader(BytesIO(bytes(pdf)), strict=False, decode_limits=DECODE_LIMITS)
        # Touch the structures validation needs so damage shows up here, not deep inside pyHanko.
        reader.root  # noqa: B018
        _check_structure(reader)
        reader.embedded_signatures  # noqa: B018
    except Unprocessable:
        raise
    except Exception as err:  # pyHanko raises PdfReadError, PdfError, ValueError, KeyError, ... on damage
        raise Unprocessable("the PDF is damaged or truncated", code="malformed_pdf",
                            details={"reason": str(err)[:200]}) from err
    return reader


def _check_structure(reader: PdfFileReader) -> None:
    """Refuse a file with more revisions or signature fields than any record before any signature is parsed:
    422 too_many_revisions / too_many_signature_fields."""
    revisions = reader.xrefs.total_revisions
    if revisions > MAX_REVISIONS:
        raise Unprocessable("the PDF has more revisions than any record", code="too_many_revisions",
                            details={"revisions": revisions, "limit": MAX_REVISIONS})
    count = 0
    for _ in enumerate_sig_fields(reader):
        count += 1
        if count > MAX_SIGNATURE_FIELDS:
            raise Unprocessable("the PDF has more signature fields than any record", code="too_many_signature_fields",
                                details={"limit": MAX_SIGNATURE_FIELDS})


# ---- signing ----------------------------------------------------------------------------------------------

async def sign_record(pdf: bytes, pki: Pki, signers: Sequence[SignerSpec], *,
                      validation_context: ValidationContext | None = None) -> bytes:
    """Add the signatures in order, each as its own incremental update with timestamp and validation data."""
    vc = validation_context or pki.validation_context()
    data = bytes(pdf)
    for spec in signers:
        data = await sign_once(data, pki, spec, validation_context=vc)
    return data


async def sign_once(pdf: bytes, pki: Pki, spec: SignerSpec, *,
                    validation_context: ValidationContext | None = None) -> bytes:
    """Add one signature (a person or the seal) to the PDF as an incremental update."""
    vc = validation_context or pki.validation_context()
    check_pdf_header(pdf)
    try:
        writer = IncrementalPdfFileWriter(BytesIO(bytes(pdf)), strict=False)
        # Checked on the writer's own reader: parsing the earlier signatures twice costs more than signing.
        filled = {name for name, _, _ in enumerate_sig_fields(writer.prev, filled_status=True)}
    except Exception as err:  # pyHanko raises PdfReadError, PdfError, ValueError, KeyError, ... on damage
        raise Unprocessable("the PDF is damaged or truncated", code="malformed_pdf",
                            details={"reason": str(err)[:200]}) from err
    if spec.field_name in filled:
        raise Conflict(f"signature field {spec.field_name} is already signed", code="already_signed")
    if SEAL_FIELD in filled:
        # The seal closes the record (定稿): anything signed after it would not be covered by it.
        raise Conflict("the record already carries the platform seal", code="record_sealed")
    try:
        signer = pki.seal_signer() if spec.is_seal else pki.user_signer(spec.public_id, spec.name or "")
    except ValueError as err:
        raise Unprocessable(str(err), code="invalid_signer") from err
    meta = PdfSignatureMetadata(
        field_name=spec.field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=spec.reason,
        location=spec.location,
        embed_validation_info=True,
        validation_context=vc,
        signer_key_usage={"non_repudiation"},
        dss_settings=_DSS_SETTINGS,
    )
    pdf_signer = PdfSigner(meta, signer=signer, timestamper=pki.timestamper(), stamp_style=_STAMP_STYLE)
    _quiet_offline_warning()
    try:
        out = await pdf_signer.async_sign_pdf(
            writer, output=BytesIO(),
            appearance_text_params={"who": "platform seal" if spec.is_seal else spec.public_id})
    except SigningError as err:
        raise Unprocessable(f"the PDF cannot be signed: {err}", code="signing_refused") from err
    except misc.PdfError as err:
        raise Unprocessable("the PDF is damaged or truncated", code="malformed_pdf") from err
    log.info("signed field %s as %s", spec.field_name, "platform seal" if spec.is_seal else spec.public_id)
    return out.getvalue()


class _OfflineWarningFilter(logging.Filter):
    """Drop pyHanko's warning that fetching is off: offline validation data is exactly what we intend."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


_offline_filter = _OfflineWarningFilter()


def _quiet_offline_warning() -> None:
    pyhanko_log = logging.getLogger("pyhanko.sign.signers.pdf_signer")
    if _offline_filter not in pyhanko_log.filters:
        pyhanko_log.addFilter(_offline_filter)


# ---- validation -------------------------------------------------------------------------------------------

Trust = Pki | ValidationContext | asn1_x509.Certificate


async def verify_pdf(pdf: bytes, trust: Trust, *, max_inflated: int = MAX_INFLATED_BYTES) -> VerificationReport:
    """Validate every signature offline against one trust root; damage gives a 422, never a crash.

    `trust` is the platform PKI (its root and current CRL, checked now), a ready ValidationContext, or just a
    pinned root certificate: then only the validation data embedded in the file (DSS) is used, checked at the
    time of each signature's timestamp — the PAdES B-LT promise that a record verifies years later, anywhere.

    Hostile files are bounded: all streams together inflate to at most `max_inflated` bytes (422
    pdf_inflates_too_much), and more revisions or signature fields than any record are refused before a
    signature is parsed.
    """
    with inflate_budget(max_inflated) as budget:
        try:
            report = await _verify_all(pdf, trust)
        except Exception:
            if budget.exceeded:
                raise _too_much_inflation(budget) from None
            raise
        if budget.exceeded:  # hit inside a step that treats damage as "no data" and goes on
            raise _too_much_inflation(budget)
        return report


async def _verify_all(pdf: bytes, trust: Trust) -> VerificationReport:
    reader = _open_reader(pdf)
    dss = _read_dss(reader)
    shared: ValidationContext | None = None
    if isinstance(trust, Pki):
        shared = trust.validation_context()
    elif isinstance(trust, ValidationContext):
        shared = trust
    reports = []
    for sig in reader.embedded_signatures:
        # One context for the whole file where possible: validated paths and the parsed CRL are reused.
        vc = shared if shared is not None else _embedded_data_context(sig, dss, trust)
        reports.append(await _verify_one(sig, vc, dss))
    return VerificationReport(reports)


def _read_dss(reader: PdfFileReader) -> DocumentSecurityStore | None:
    try:
        return DocumentSecurityStore.read_dss(reader)
    except Exception:  # no DSS, or a damaged one: signatures then lack offline validation data
        return None


def _timestamp_time(sig) -> datetime | None:
    try:
        token = sig.attached_timestamp_data
        if token is None:
            return None
        return token["encap_content_info"]["content"].parsed["gen_time"].native
    except Exception:
        return None


def _embedded_data_context(sig, dss: DocumentSecurityStore | None, root: asn1_x509.Certificate
                           ) -> ValidationContext:
    """Trust only `root`; take certificates and CRLs from the file itself, as of the signature timestamp."""
    kwargs = dict(trust_roots=[root], allow_fetching=False, revocation_mode="require",
                  moment=_timestamp_time(sig))
    if dss is None:
        return ValidationContext(**kwargs)
    return dss.as_validation_context(kwargs)


async def _verify_one(sig, vc: ValidationContext, dss: DocumentSecurityStore | None) -> SignatureReport:
    subject, name, public_id = _signer_identity(sig)
    try:
        status: PdfSignatureStatus = await async_validate_pdf_signature(sig, signer_validation_context=vc)
    except Exception as err:  # a mangled CMS blob or byte range must read as "not intact", not as a 500
        log.info("signature %s could not be validated: %s", sig.field_name, err)
        return SignatureReport(
            field_name=sig.field_name, signer_name=name, signer_public_id=public_id, signer_subject=subject,
            signing_time=None, timestamp_time=None, intact=False, valid=False, trusted=False, coverage="unknown",
            modification_level=None, timestamp_valid=False, has_validation_data=False, bottom_line=False,
            problem=f"{type(err).__name__}: {err}"[:300])
    ts = status.timestamp_validity
    ts_ok = bool(ts is not None and ts.intact and ts.valid and ts.trusted)
    ts_time = ts.timestamp if ts is not None else None
    level = status.modification_level
    return SignatureReport(
        field_name=sig.field_name,
        signer_name=name,
        signer_public_id=public_id,
        signer_subject=subject,
        signing_time=ts_time or status.signer_reported_dt,
        timestamp_time=ts_time,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        coverage=_coverage(status),
        modification_level=level.name.lower() if level is not None else None,
        timestamp_valid=ts_ok,
        has_validation_data=_has_validation_data(sig, dss),
        bottom_line=bool(status.bottom_line and ts_ok),
        problem=None if status.bottom_line and ts_ok else _problem(status, ts_ok),
    )


def _signer_identity(sig) -> tuple[str | None, str | None, str | None]:
    try:
        cert: asn1_x509.Certificate = sig.signer_cert
        native = cert.subject.native
        return cert.subject.human_friendly, native.get("common_name"), native.get("serial_number")
    except Exception:  # a damaged CMS blob has no readable certificate
        return None, None, None


def _coverage(status: PdfSignatureStatus) -> str:
    cov = status.coverage
    if cov is None:
        return "unknown"
    return {"ENTIRE_FILE": "entire_file", "ENTIRE_REVISION": "entire_revision"}.get(cov.name, "partial")


def _has_validation_data(sig, dss: DocumentSecurityStore | None) -> bool:
    """B-LT: the DSS holds the signer's certificate and at least one CRL."""
    if dss is None or not dss.crls:
        return False
    try:
        return sig.signer_cert.issuer_serial in dss.certs
    except Exception:
        return False


def _problem(status: PdfSignatureStatus, ts_ok: bool) -> str:
    if not status.intact:
        return "the signed bytes were changed"
    if not status.valid:
        return "the signature does not match the signer's key"
    if not status.trusted:
        return "the signer's certificate does not chain to the trusted platform root"
    if not ts_ok:
        return "the signature timestamp is missing or invalid"
    if status.docmdp_ok is False:
        return "the document was modified after signing"
    return "the signature does not meet the validation policy"
