"""Benchmark: render a 10-page evaluation report, sign it 9 times (8 experts + platform seal), verify all 9.

Run: .venv/bin/python bench/records.py [--rounds N]
Targets on the 2-core reference machine: render + sign <= 3 s, verify <= 1.5 s.
Prints the totals and where the time goes (render, per signature, timestamping, DSS/LTV, validation).
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from evidence import records as rec  # noqa: E402
from evidence.pki import Pki  # noqa: E402
from evidence.signing import SignerSpec, sign_record, verify_pdf  # noqa: E402

EXPERTS = ["张伟", "李娜", "欧阳娜娜", "王芳", "刘洋", "陈静", "赵磊", "司马相如"]
RENDER_TARGET_S = 3.0
VERIFY_TARGET_S = 1.5

# ---- instrumentation: wall time spent inside selected pyHanko steps -----------------------------------------

SPENT: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


def _instrument(owner, attr: str, label: str) -> None:
    fn = owner.__dict__[attr]
    is_classmethod = isinstance(fn, classmethod)
    raw = fn.__func__ if is_classmethod else fn
    if asyncio.iscoroutinefunction(raw):
        @functools.wraps(raw)
        async def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return await raw(*a, **kw)
            finally:
                SPENT[label] += time.perf_counter() - t
                CALLS[label] += 1
    else:
        @functools.wraps(raw)
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return raw(*a, **kw)
            finally:
                SPENT[label] += time.perf_counter() - t
                CALLS[label] += 1
    setattr(owner, attr, classmethod(wrapper) if is_classmethod else wrapper)


def install_probes() -> None:
    from pyhanko.sign.signers import pdf_signer
    from evidence.pki import PlatformTimeStamper
    from pyhanko.sign.validation import pdf_embedded
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    _instrument(PlatformTimeStamper, "async_request_tsa_response", "timestamping (TSA token)")
    _instrument(pdf_signer.PdfSigningSession, "perform_presign_validation", "pre-sign chain + CRL check")
    _instrument(pdf_signer.PdfSigningSession, "estimate_signature_container_size", "signature size estimate")
    _instrument(DocumentSecurityStore, "supply_dss_in_writer", "DSS / LTV data")
    _instrument(pdf_embedded.EmbeddedPdfSignature, "compute_integrity_info", "verify: integrity + diff analysis")


# ---- workload -----------------------------------------------------------------------------------------------

def report_document(rows: int = 290) -> rec.RecordDocument:
    """An evaluation report long enough for 10 A4 pages, with a 9-row signature table."""
    scores = [[i + 1, f"第{i + 1}号投标人建设工程有限公司 Bidder {i + 1} Construction Co., Ltd.",
               f"{Decimal(1_000_000 + i * 12_345):,.2f}", f"{Decimal(95) - Decimal(i) / 4:.2f}"]
              for i in range(rows)]
    signers = [(name, "评标专家", "Evaluation expert") for name in EXPERTS]
    signers.append(("周建国", "监督人员", "Supervisor"))
    return rec.RecordDocument(
        record_no="PB-2026-000777", kind="evaluation_report",
        title_zh="某市政道路改造工程评标报告", title_en="Evaluation Report: Municipal Road Renovation",
        issued_at=datetime(2026, 11, 25, 6, 30, tzinfo=timezone.utc),
        verify_url="https://bidroom.example.cn/verify/PB-2026-000777",
        checkpoint={"size": 4096, "head": "ab" * 32, "root": "cd" * 32, "signature": "Q" * 86, "key_id": "k1"},
        attachment={"tender": "T-2026-0042", "scores": [{"rank": r[0], "score": r[3]} for r in scores]},
        blocks=[
            rec.SectionHeading("项目信息", "Project"),
            rec.KeyValueBlock(items=[("项目名称", "Project", "某市政道路改造工程（一标段）"),
                                     ("招标编号", "Tender No.", "T-2026-0042"),
                                     ("评标办法", "Method", "综合评估法 Comprehensive evaluation")]),
            rec.SectionHeading("评分明细", "Scores"),
            rec.TableBlock(headers=[("排名", "Rank"), ("投标人", "Bidder"), ("报价（元）", "Price (CNY)"),
                                    ("得分", "Score")], rows=scores, col_weights=[1, 6, 2.4, 1.4]),
            rec.TextBlock("评标委员会按照招标文件规定的评标办法和标准，对各投标文件进行了评审和比较。"),
            rec.SignatureTable(rows=signers),
        ])


def signer_specs() -> list[SignerSpec]:
    people = [SignerSpec.person(rec.signature_field_name(i), f"U-EXP{i:03d}", name)
              for i, name in enumerate(EXPERTS)]
    return people + [SignerSpec.seal()]


async def one_round(pki: Pki, doc: rec.RecordDocument) -> dict[str, float]:
    SPENT.clear()
    CALLS.clear()
    t0 = time.perf_counter()
    pdf = rec.render_record(doc)
    t1 = time.perf_counter()
    signed = await sign_record(pdf, pki, signer_specs())
    t2 = time.perf_counter()
    report = await verify_pdf(signed, pki)
    t3 = time.perf_counter()
    if not report.valid or len(report.signatures) != 9:
        raise SystemExit(f"verification failed: {report.as_dict()}")
    return {"render": t1 - t0, "sign": t2 - t1, "verify": t3 - t2, "pages": _pages(pdf),
            "bytes_rendered": len(pdf), "bytes_signed": len(signed), **{f"p:{k}": v for k, v in SPENT.items()}}


def _pages(pdf: bytes) -> int:
    from pypdf import PdfReader
    from io import BytesIO
    return len(PdfReader(BytesIO(pdf)).pages)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    install_probes()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        pki = Pki.load_or_create(Path(tmp) / "keys" / "pki", public_url="https://bidroom.example.cn")
        pki_create = time.perf_counter() - t
        for i, (_, name) in enumerate(zip(range(8), EXPERTS)):
            pki.issue_user_cert(f"U-EXP{i:03d}", name)
        doc = report_document()
        t = time.perf_counter()
        rec.render_record(doc)  # first render also loads the 17 MB font collection
        cold_render = time.perf_counter() - t
        results = [await one_round(pki, doc) for _ in range(args.rounds)]

    def med(key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in results)

    render, sign, verify = med("render"), med("sign"), med("verify")
    summary = Table(title=f"records benchmark (median of {args.rounds} rounds, {results[0]['pages']} pages, "
                          "9 signatures)")
    summary.add_column("step")
    summary.add_column("seconds", justify="right")
    summary.add_column("target", justify="right")
    summary.add_row("render + sign", f"{render + sign:.3f}", f"≤ {RENDER_TARGET_S:.1f}")
    summary.add_row("verify 9 signatures", f"{verify:.3f}", f"≤ {VERIFY_TARGET_S:.1f}")
    console.print(summary)

    detail = Table(title="where the time goes (median per round)")
    detail.add_column("part")
    detail.add_column("seconds", justify="right")
    detail.add_column("per signature", justify="right")
    detail.add_row("PKI creation (first start, once)", f"{pki_create:.3f}", "")
    detail.add_row("first render incl. font load (once per process)", f"{cold_render:.3f}", "")
    detail.add_row("render (warm)", f"{render:.3f}", "")
    detail.add_row("sign, all 9", f"{sign:.3f}", f"{sign / 9:.3f}")
    for key in sorted(k for k in results[0] if k.startswith("p:")):
        label = key[2:]
        per = "" if label.startswith("verify") else f"{med(key) / 9:.3f}"
        detail.add_row(f"  {label}" if not label.startswith("verify") else label, f"{med(key):.3f}", per)
    detail.add_row("verify, all 9", f"{verify:.3f}", f"{verify / 9:.3f}")
    detail.add_row("size rendered / signed (KiB)",
                   f"{results[0]['bytes_rendered'] / 1024:.0f} / {results[0]['bytes_signed'] / 1024:.0f}", "")
    console.print(detail)
    ok = render + sign <= RENDER_TARGET_S and verify <= VERIFY_TARGET_S
    console.print("[green]within targets[/green]" if ok else "[red]over target[/red]")


if __name__ == "__main__":
    asyncio.run(main())
