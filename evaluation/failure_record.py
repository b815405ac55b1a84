"""The signed failure record (流标记录) of a lot failed at the qualification and compliance review: fewer than 3
compliant bids remain once the committee has rejected bids (否决后不足3家; 评标委员会和评标方法暂行规定 第二十七条,
招标投标法 第四十二条). The committee's chair signs it with their own certificate and the platform seals it.

Pure content (`failure_content`) plus the issuing use case (`issue_failure_record`) over
`evidence.records_service`; it never commits, and the records service writes the ledger entries
(`record.render`, `record.sign`, `record.seal`) in the caller's transaction. The record is about the evaluation
session (`evaluation_session:<id>`), so it follows the report's audience rule (the committee, the tender's
agents and supervisors); the lot's `lot.failed` ledger entry and the session's review result name it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from core.principal import Principal
from evidence.records import KeyValueBlock, SectionHeading, SignatureTable, TableBlock, TextBlock, signature_field_name
from evidence.records_models import Record
from evidence.records_service import RecordContent, RecordsContext, issue_record
from evidence.signing import SignerSpec

RECORD_KIND = "lot_failed_review"
STATUTE = "评标委员会和评标方法暂行规定 第二十七条; 招标投标法 第四十二条"
SIGN_REASON = "流标记录 / Failed lot record: committee chair's signature"


@dataclass(frozen=True)
class ReviewedBidder:
    organisation_id: str
    name: str
    passed: bool
    failed: Sequence[dict]       # {"requirement", "passes", "fails", "reasons"} per requirement it failed


@dataclass(frozen=True)
class FailureInput:
    tender_code: str
    tender_title: str
    lot_id: str
    lot_title: str
    session_id: str
    closed_at: datetime
    requirements: Sequence[dict]   # {"code", "title", "kind"}
    bidders: Sequence[ReviewedBidder]
    members: int
    chair_name: str


def failure_content(data: FailureInput) -> RecordContent:
    """The record: the lot, the review, each bidder's standing with the reasons of each failed requirement, the
    count of compliant bids against the minimum of 3, and the chair's signature."""
    titles = {r["code"]: r.get("title") or r["code"] for r in data.requirements}
    compliant = [b for b in data.bidders if b.passed]
    standing_rows = [[i + 1, b.name, "合格 Compliant" if b.passed else "否决 Rejected"]
                     for i, b in enumerate(data.bidders)]
    reason_rows = [[b.name, f"{f['requirement']} {titles.get(f['requirement'], '')}".strip(),
                    f"{f['fails']} / {f['passes'] + f['fails']}", "；".join(f.get("reasons") or []) or "—"]
                   for b in data.bidders if not b.passed for f in b.failed]
    blocks = [
        KeyValueBlock([("项目编号", "Tender code", data.tender_code), ("项目名称", "Title", data.tender_title),
                       ("标段", "Lot", f"{data.lot_id} {data.lot_title}"),
                       ("评标会议", "Evaluation session", data.session_id),
                       ("评标委员会人数", "Committee members", data.members),
                       ("审查结束时间", "Review closed at", data.closed_at),
                       ("合格投标人数", "Compliant bids", f"{len(compliant)}（不足3家 / fewer than 3）")]),
        SectionHeading("资格审查和符合性审查结果", "Qualification and compliance review"),
        TableBlock([("序号", "No."), ("投标人", "Bidder"), ("结论", "Outcome")], standing_rows or [["", "", ""]],
                   col_weights=[0.5, 3.5, 1.5]),
        SectionHeading("否决理由", "Reasons for rejection"),
        TableBlock([("投标人", "Bidder"), ("审查项", "Requirement"), ("否决票", "Votes to reject"),
                    ("理由", "Reasons")], reason_rows or [["", "", "", ""]], col_weights=[2.2, 1.6, 0.9, 3.0]),
        TextBlock("评标委员会否决不合格投标后，有效投标不足三个，本标段流标，招标人应当依法重新招标。\n"
                  "After the committee rejected the non-compliant bids, fewer than three valid bids remain: the lot "
                  f"fails and is to be tendered again.\n依据 / Statute: {STATUTE}"),
        SignatureTable([(data.chair_name, "评标委员会主任委员", "Committee chair")]),
    ]
    return RecordContent(
        kind=RECORD_KIND, title_zh="流标记录（评标）", title_en="Failed lot record (evaluation)", blocks=blocks,
        attachment={"tender": data.tender_code, "lot": data.lot_id, "evaluation_session": data.session_id,
                    "closed_at": data.closed_at.isoformat(), "members": data.members,
                    "requirements": [dict(r) for r in data.requirements],
                    "bidders": [{"bidder": b.organisation_id, "name": b.name, "passed": b.passed,
                                 "failed": [dict(f) for f in b.failed]} for b in data.bidders],
                    "compliant": len(compliant), "statute": STATUTE})


async def issue_failure_record(session: AsyncSession, ctx: RecordsContext, data: FailureInput, *, who: Principal,
                               checkpoint: dict | None) -> Record:
    """Render, sign as the chair (`who`, with their own certificate) and seal the record.

    `checkpoint`: a ledger checkpoint signed before the caller's transaction appended to the ledger
    (`records_service.fresh_checkpoint`)."""
    return await issue_record(
        session, ctx, actor=who.public_id, entity=f"evaluation_session:{data.session_id}",
        content=failure_content(data),
        signers=[SignerSpec.person(signature_field_name(0), who.public_id, data.chair_name, reason=SIGN_REASON)],
        audience="entity", checkpoint=checkpoint)
