"""Languages of the pages: Babel catalogues (zh_CN by default, en), compiled from the .po files in web/locale at
start, the request's language (cookie, then Accept-Language), and how times and amounts read in each."""
from __future__ import annotations

import contextvars
import io
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from core.clock import format_local

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
LANGUAGES = ("zh_CN", "en")
DEFAULT = "zh_CN"
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
LANG_COOKIE = "bidroom_lang"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("page_language", default=DEFAULT)


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def translations(lang: str) -> Translations:
    """The catalogue of a language, compiled from its .po in memory (no .mo is kept in the repository)."""
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def load_all() -> None:
    """Compile every catalogue once at start, so a broken .po stops the server rather than a page."""
    for lang in LANGUAGES:
        translations(lang)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's language if it is one we have, else the best Accept-Language match, else Chinese."""
    if cookie in LANGUAGES:
        return cookie
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def activate(lang: str) -> contextvars.Token:
    return _current.set(lang if lang in LANGUAGES else DEFAULT)


def current() -> str:
    return _current.get()


def gettext(message: str, /, **params) -> str:
    text = translations(current()).ugettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, /, **params) -> str:
    text = translations(current()).ungettext(singular, plural, n)
    params.setdefault("num", n)
    return text % params


def N_(message: str) -> str:
    """Marks a string for extraction; translated where it is shown."""
    return message


# ---- how values read ---------------------------------------------------------------------------------------

WAN = Decimal(10_000)


def _grouped(value: Decimal, places: int = 2) -> str:
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{q:,.{places}f}"


def money(value: Decimal | str | None, currency: str = "CNY") -> str:
    """An amount as its reader expects: 万元 in Chinese from ten thousand yuan up, ¥ with grouping otherwise."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    if currency != "CNY":
        return f"{_grouped(amount)} {currency}"
    if current() == "zh_CN" and abs(amount) >= WAN:
        return f"{_grouped(amount / WAN, 2)} 万元"
    return f"¥{_grouped(amount)}"


def when(value: datetime | str | None, seconds: bool = False) -> str:
    """A time in Beijing time with its zone (core.clock.format_local); ISO strings from the API are accepted."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_local(value, seconds=seconds)
