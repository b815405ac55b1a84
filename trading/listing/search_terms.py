"""Search terms for Chinese and mixed text, stored in a GIN-indexed text[] and queried with @>. Pure, no I/O.

PostgreSQL without extensions has no Chinese tokenizer, so we index:
- every CJK character (unigram) and every pair of adjacent CJK characters (bigram) within a run of CJK text;
- every latin/digit word, lowercased.

A query becomes its CJK bigrams (or the lone character of a one-character run) and its words, and a document
matches when it holds all of them: `terms @> query_terms`. For CJK this is a close approximation of substring
search: a real substring always matches. It can over-match when all the query's bigrams occur in the document
but not next to each other (中山路 vs. "中山 … 山路"); re-check with LIKE where that matters. Latin words match
whole words only, case-insensitively ("zfcg" finds ZS-2026-ZFCG-00042, "zfc" does not).
"""
from __future__ import annotations

import logging
import unicodedata
from typing import Sequence

log = logging.getLogger(__name__)

# Ideographs (basic, extension A, compatibility, extensions B and later) plus kana and hangul syllables,
# which are written without spaces just like Chinese.
_CJK_RANGES = (
    (0x3040, 0x30FF),    # hiragana, katakana
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xAC00, 0xD7AF),    # hangul syllables
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)
_CJK, _WORD, _OTHER = 0, 1, 2


def is_cjk(char: str) -> bool:
    """True for a character that is written without spaces between words (Han, kana, hangul)."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def _kind(char: str) -> int:
    if is_cjk(char):
        return _CJK
    if char.isalnum():
        return _WORD
    return _OTHER


def _runs(text: str) -> list[tuple[int, str]]:
    """Split normalized text into maximal runs of CJK characters and of latin/digit word characters."""
    # NFKC folds full-width ＡＢＣ１２３ to ABC123; casefold makes words case-insensitive.
    norm = unicodedata.normalize("NFKC", text).casefold()
    runs: list[tuple[int, str]] = []
    start, kind = 0, None
    for i, char in enumerate(norm):
        k = _kind(char)
        if k != kind:
            if kind in (_CJK, _WORD):
                runs.append((kind, norm[start:i]))
            start, kind = i, k
    if kind in (_CJK, _WORD):
        runs.append((kind, norm[start:]))
    return runs


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def terms(text: str | None) -> list[str]:
    """Index terms of a document: CJK unigrams and bigrams, plus lowercase latin/digit words, without repeats."""
    out: list[str] = []
    for kind, run in _runs(text or ""):
        if kind == _WORD:
            out.append(run)
            continue
        out.extend(run)  # unigrams, so a one-character query can match inside a longer run
        out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return _dedupe(out)


def query_terms(q: str | None) -> list[str]:
    """Terms a document must all contain to match query `q`; empty for a query with nothing searchable."""
    out: list[str] = []
    for kind, run in _runs(q or ""):
        if kind == _WORD or len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return _dedupe(out)


def document_terms(*fields: str | None) -> list[str]:
    """Index terms of several fields (title, code, tenderer name…) kept apart so no bigram spans two fields."""
    out: list[str] = []
    for text in fields:
        out.extend(terms(text))
    return _dedupe(out)


def cjk_phrases(q: str | None) -> list[str]:
    """The query's runs of three or more CJK characters, which the listing re-checks as substrings.

    Bigram containment can over-match such a run (中山路 finds "中山市…山路"); one or two characters cannot.
    """
    norm = unicodedata.normalize("NFKC", q or "")
    phrases, run = [], ""
    for char in norm + " ":
        if is_cjk(char):
            run += char
            continue
        if len(run) >= 3:
            phrases.append(run)
        run = ""
    return list(dict.fromkeys(phrases))


def tender_terms(title: str, code: str, description: str | None, tenderer_name: str,
                 lot_titles: Sequence[str] = (), title_en: str | None = None) -> list[str]:
    """What a listing query `q` matches in a tender: the text a reader sees (title, English title, code,
    description, tenderer, lot titles), each field apart so no bigram spans two of them. Categories have their
    own filter, so their names are not mixed into keyword search."""
    return document_terms(title, title_en, code, description, tenderer_name, *lot_titles)
