"""Signing the evaluation report: issued unsigned, each member signs with their own certificate, the seal last.

The flow over `evidence.records_service` (no web imports; the caller's transaction):

1. `issue_report`: render the report of `evaluation.report.build_report` and archive it unsealed, with no
   signature (status "signing").
2. `sign_report`: a member signs their own row with their own nonRepudiation certificate (`Pki.user_signer`),
   as one more PAdES incremental update; members sign in any order, one at a time (the record row is locked).
3. `refuse_to_sign`: a member declines to sign without written reasons. Under 招标投标法实施条例 第53条 that is
   deemed agreement with the result: it is recorded in the ledger and does not block the seal.
4. `file_dissent`: a member states a dissent in writing after the report was rendered. The PDF's content is fixed
   once rendered and 第53条 wants the dissent noted in the report itself, so dissents are collected before
   rendering (`ReportInput.dissents`) and printed there; one filed later is recorded in the ledger and makes this
   report stale: it can no longer be signed or sealed, and the session issues a new revision that prints it
   (`dissents_filed` gives what to pass as `ReportInput.dissents`).
5. `finalise`: the platform seal (`seal_record`), once every member has signed or is recorded as refusing.

A signer row (`ReportSigner`) names the member as the report lists them and the account whose own certificate
signs for them (`account`, e.g. an evaluation session's member id and the expert's user account): the caller is
matched by account, the record's signatures are read back as members.

Every step writes a ledger entry on the record (`record:<no>`) in the caller's transaction, beside the
`record.render` / `record.sign` / `record.seal` entries of the records service.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden, Unprocessable
from core.principal import Principal
from evaluation.report import RECORD_KIND, Dissent, ReportSigner
from evidence import ledger_service as ledger
from evidence.ledger_models import AuditEntry
from evidence.records_models import Record
from evidence.records_service import RecordContent, RecordsContext, add_signature, issue_record, seal_record
from evidence.signing import SignerSpec

log = logging.getLogger(__name__)

__all__ = ["REFUSE", "DISSENT", "SigningState", "issue_report", "signing_state", "sign_report", "refuse_to_sign",
           "file_dissent", "dissents_filed", "finalise"]

ISSUE = "evaluation.report.issue"
REFUSE = "evaluation.report.refuse"
DISSENT = "evaluation.report.dissent"
FINALISE = "evaluation.report.finalise"
SIGN_REASON = "Evaluation report: committee member's signature"
MAX_REASONS = 4000


@dataclass(frozen=True)
class SigningState:
    """Where the signing of one report stands, member by member."""

    signed: tuple[str, ...]        # public ids whose signature is on the PDF, in signing order
    refused: tuple[str, ...]       # declined without reasons: deemed agreement (实施条例 第53条)
    dissented: tuple[str, ...]     # dissent filed after rendering: the report is stale
    pending: tuple[str, ...]       # neither yet, in committee order
    sealed: bool

    @property
    def stale(self) -> bool:
        return bool(self.dissented)

    @property
    def complete(self) -> bool:
        return not self.pending

    def as_dict(self) -> dict:
        return {"signed": list(self.signed), "refused": list(self.refused), "dissented": list(self.dissented),
                "pending": list(self.pending), "sealed": self.sealed, "stale": self.stale}


def _ref(record: Record) -> str:
    return ledger.entity_ref("record", record.record_no)


async def _locked(session: AsyncSession, record: Record) -> Record:
    """The record row locked for this transaction, so two members never sign the same bytes at once."""
    row = (await session.execute(select(Record).where(Record.id == record.id).with_for_update()
                                 .execution_options(populate_existing=True))).scalar_one()
    if row.kind != RECORD_KIND:
        raise Unprocessable("this record is not an evaluation report", code="not_an_evaluation_report",
                            details={"record_no": row.record_no, "kind": row.kind})
    return row


def _member(signers: Sequence[ReportSigner], who: Principal) -> ReportSigner:
    """The caller's row: matched by the account that signs (a member's own certificate)."""
    for s in signers:
        if s.signer_id == who.public_id:
            return s
    raise Forbidden("only the committee's members sign the evaluation report", code="not_a_member",
                    details={"who": who.public_id})


async def signing_state(session: AsyncSession, record: Record, signers: Sequence[ReportSigner]) -> SigningState:
    """Signatures from the record, refusals and late dissents from the ledger."""
    rows = (await session.execute(
        select(AuditEntry.action, AuditEntry.payload).where(AuditEntry.entity == _ref(record),
                                                            AuditEntry.action.in_((REFUSE, DISSENT)))
        .order_by(AuditEntry.seq))).all()
    by_account = {s.signer_id: s.public_id for s in signers}
    signed = tuple(by_account.get(s["public_id"], s["public_id"]) for s in record.signers
                   if s["public_id"] != "platform")
    refused = tuple(dict.fromkeys(p["member"] for a, p in rows if a == REFUSE and p["member"] not in signed))
    dissented = tuple(dict.fromkeys(p["member"] for a, p in rows if a == DISSENT))
    pending = tuple(s.public_id for s in signers if s.public_id not in signed and s.public_id not in refused)
    return SigningState(signed, refused, dissented, pending, record.status == "sealed")


def _open(record: Record, state: SigningState) -> None:
    if record.status == "sealed":
        raise Conflict("the report is sealed; nothing can be added", code="record_sealed")
    if state.stale:
        raise Conflict("a dissent was filed after the report was rendered; a new report must print it",
                       code="report_stale", details={"dissented": list(state.dissented)})


async def issue_report(session: AsyncSession, ctx: RecordsContext, content: RecordContent, *, who: Principal,
                       entity: str, audience: str = "staff", checkpoint: dict | None = None,
                       revision: int = 1, supersedes: str | None = None) -> Record:
    """Render and archive the report unsealed and unsigned; the members sign it next.

    `checkpoint`: a ledger checkpoint signed beforehand (`records_service.fresh_checkpoint`), required when the
    caller's transaction already appended to the ledger (the side transaction would wait for its lock).
    `revision` and `supersedes` (the record number of the revision this one replaces) go into the ledger entry,
    as the report prints them."""
    if content.kind != RECORD_KIND:
        raise ValueError("issue_report takes the content of evaluation.report.build_report")
    record = await issue_record(session, ctx, actor=who.public_id, entity=entity, content=content, signers=(),
                                seal=False, audience=audience, checkpoint=checkpoint)
    await ledger.append(session, actor=who.public_id, action=ISSUE, entity=entity,
                        payload={"record_no": record.record_no, "sha256": record.sha256, "revision": revision,
                                 "supersedes": supersedes})
    log.info("evaluation report %s issued for %s", record.record_no, entity)
    return record


async def sign_report(session: AsyncSession, ctx: RecordsContext, record: Record, signers: Sequence[ReportSigner], *,
                      who: Principal) -> Record:
    """The calling member signs their own row with their own certificate (sequential PAdES)."""
    member = _member(signers, who)
    record = await _locked(session, record)
    state = await signing_state(session, record, signers)
    _open(record, state)
    if member.public_id in state.signed:
        raise Conflict("you have already signed this report", code="already_signed")
    spec = SignerSpec.person(member.field_name, member.signer_id, member.name, reason=SIGN_REASON)
    return await add_signature(session, ctx, record, spec, actor=who.public_id)


async def refuse_to_sign(session: AsyncSession, record: Record, signers: Sequence[ReportSigner], *,
                         who: Principal) -> SigningState:
    """A member declines to sign without written reasons: deemed agreement, the seal is not blocked.

    招标投标法实施条例 第53条: 评标委员会成员拒绝在评标报告上签字又不书面说明其不同意见和理由的，视为同意评标结果。
    """
    member = _member(signers, who)
    record = await _locked(session, record)
    state = await signing_state(session, record, signers)
    _open(record, state)
    if member.public_id in state.signed:
        raise Conflict("you have already signed this report", code="already_signed")
    if member.public_id in state.refused:
        raise Conflict("your refusal is already recorded", code="already_refused")
    await ledger.append(session, actor=who.public_id, action=REFUSE, entity=_ref(record),
                        payload={"member": member.public_id, "deemed": "agreement",
                                 "rule": "招标投标法实施条例 第53条"})
    return await signing_state(session, record, signers)


async def file_dissent(session: AsyncSession, record: Record, signers: Sequence[ReportSigner], *, who: Principal,
                       reasons: str) -> SigningState:
    """A member's written dissent after rendering: recorded, and the report goes stale until re-issued with it.

    招标投标法实施条例 第53条: 对评标结果有不同意见的评标委员会成员应当以书面形式说明其不同意见和理由，评标报告应当注明该不同意见。
    """
    member = _member(signers, who)
    text = (reasons or "").strip()
    if not text:
        raise Unprocessable("a dissent states its reasons in writing (实施条例 第53条)", code="dissent_without_reasons",
                            details={"rule": "招标投标法实施条例 第53条"})
    if len(text) > MAX_REASONS:
        raise Unprocessable(f"the reasons are limited to {MAX_REASONS} characters", code="dissent_too_long")
    record = await _locked(session, record)
    if record.status == "sealed":
        raise Conflict("the report is sealed; nothing can be added", code="record_sealed")
    state = await signing_state(session, record, signers)
    if member.public_id in state.signed:
        raise Conflict("you have signed this report; a dissent is stated before signing", code="already_signed")
    await ledger.append(session, actor=who.public_id, action=DISSENT, entity=_ref(record),
                        payload={"member": member.public_id, "reasons": text, "rule": "招标投标法实施条例 第53条"})
    return await signing_state(session, record, signers)


async def dissents_filed(session: AsyncSession, record: Record) -> tuple[Dissent, ...]:
    """The dissents filed on this report after it was rendered, in filing order (a member's latest text counts):
    what the next revision of the report must print (`ReportInput.dissents`)."""
    rows = (await session.execute(
        select(AuditEntry.payload).where(AuditEntry.entity == _ref(record), AuditEntry.action == DISSENT)
        .order_by(AuditEntry.seq))).scalars().all()
    latest: dict[str, str] = {}
    for p in rows:
        latest.pop(p["member"], None)
        latest[p["member"]] = p["reasons"]
    return tuple(Dissent(member, reasons) for member, reasons in latest.items())


async def finalise(session: AsyncSession, ctx: RecordsContext, record: Record, signers: Sequence[ReportSigner], *,
                   who: Principal) -> Record:
    """The platform seal, last, once every member has signed or refused without reasons (实施条例 第53条)."""
    record = await _locked(session, record)
    state = await signing_state(session, record, signers)
    _open(record, state)
    if state.pending:
        raise Conflict("members still have to sign or refuse", code="report_signatures_pending",
                       details={"pending": list(state.pending)})
    record = await seal_record(session, ctx, record, actor=who.public_id)
    await ledger.append(session, actor=who.public_id, action=FINALISE, entity=_ref(record),
                        payload={"signed": list(state.signed), "refused_deemed_agreement": list(state.refused),
                                 "sha256": record.sha256})
    log.info("evaluation report %s sealed: %d signed, %d refused", record.record_no, len(state.signed),
             len(state.refused))
    return record
