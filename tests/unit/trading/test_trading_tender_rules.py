"""Document types by magic bytes, filenames, listing cursors and search phrases."""
import pytest

from core.errors import BadRequest, UnsupportedMediaType
from trading.documents import clean_filename, sniff_document_type
from trading.listing.cursors import Cursor, decode_cursor, encode_cursor
from trading.listing.search_terms import cjk_phrases

@pytest.mark.parametrize("head, name, media", [
    (b"%PDF-1.4\n", "a.pdf", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "a.png", "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JF", "a.jpg", "image/jpeg"),
    (b"PK\x03\x04\x14\x00", "清单.XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (b"PK\x03\x04\x14\x00", "附件.zip", "application/zip"), (b"PK\x03\x04\x14\x00", "noext", "application/zip"),
])
def test_allowed_documents_are_recognised_by_their_first_bytes(head, name, media):
    assert sniff_document_type(head, name) == media


@pytest.mark.parametrize("head", [b"MZ\x90\x00", b"GIF89a", b"<html>", b"PK\x05\x06", b"", b"%PD"])
def test_anything_else_is_refused_whatever_its_name(head):
    with pytest.raises(UnsupportedMediaType) as err:
        sniff_document_type(head, "file.pdf")
    assert err.value.code == "unsupported_document_type"


def test_filenames_lose_their_directories_and_control_characters():
    assert clean_filename("C:\\Users\\王\\招标文件.pdf") == "招标文件.pdf"
    assert clean_filename("../../a\x00b.pdf") == "ab.pdf"
    for bad in (None, "", "  ", "dir/", ".."):
        with pytest.raises(BadRequest):
            clean_filename(bad)


def test_cursors_round_trip_and_refuse_tampering_or_another_sort():
    cursor = Cursor("deadline", "2026-03-22T01:00:00+00:00", 42)
    token = encode_cursor(cursor)
    assert decode_cursor(token, "deadline") == cursor
    with pytest.raises(BadRequest):
        decode_cursor(token, "published")
    for bad in ("", "!!!", encode_cursor(cursor)[:-3], "W1tdXQ"):
        with pytest.raises(BadRequest):
            decode_cursor(bad, "deadline")


def test_runs_of_three_or_more_chinese_characters_are_rechecked_as_phrases():
    assert cjk_phrases("中山路 道路 ZFCG 医疗设备采购") == ["中山路", "医疗设备采购"]
    assert cjk_phrases("ab") == [] and cjk_phrases(None) == []
