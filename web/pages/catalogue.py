"""The message catalogues: extraction of every translatable string (templates and page modules) with Babel, and
`python -m web.pages.catalogue` to bring web/locale/*/messages.po up to date (new strings come in with an empty
translation, which the untranslated-string test refuses until someone fills it in)."""
from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from web.pages import i18n

WEB = Path(__file__).resolve().parent.parent
METHOD_MAP = [("templates/**.html", "jinja2"), ("pages/**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extract() -> dict[str, list[tuple[str, int]]]:
    """msgid -> where it occurs, for every string marked in web/templates and web/pages."""
    found: dict[str, list[tuple[str, int]]] = {}
    for filename, lineno, message, _comments, _ctx in extract_from_dir(
            str(WEB), METHOD_MAP, OPTIONS, keywords=KEYWORDS):
        ids = message if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if msgid:
                found.setdefault(msgid, []).append((filename, lineno))
    return found


def read(lang: str) -> Catalog:
    with i18n.po_path(lang).open("rb") as fh:
        return read_po(fh, locale=lang, domain=i18n.DOMAIN)


def missing(lang: str) -> list[str]:
    """Strings the code uses that the language's catalogue lacks or leaves untranslated."""
    catalog = read(lang)
    out = []
    for msgid in extract():
        entry = catalog.get(msgid)
        if entry is None or not entry.string:
            out.append(msgid)
    return sorted(out)


def update() -> None:
    found = extract()
    for lang in i18n.LANGUAGES:
        path = i18n.po_path(lang)
        old = read(lang) if path.exists() else Catalog(locale=lang, domain=i18n.DOMAIN)
        new = Catalog(locale=lang, domain=i18n.DOMAIN, project="bidroom", version="1",
                      charset="utf-8", fuzzy=False)
        for msgid, where in sorted(found.items()):
            entry = old.get(msgid)
            string = entry.string if entry is not None else ""
            if not string and lang == "en":
                string = msgid  # the source strings are English
            new.add(msgid, string, locations=sorted(set(where)))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, new, width=120, omit_header=False, sort_output=True, include_lineno=False)
        untranslated = [m for m in found if not (new.get(m) and new.get(m).string)]
        print(f"{path.relative_to(WEB.parent)}: {len(found)} strings, {len(untranslated)} untranslated")


if __name__ == "__main__":
    update()
    sys.exit(0)
