"""The CJK font embedded in every record: WenQuanYi Zen Hei (Debian fonts-wqy-zenhei), face 0, as TrueType.

Noto CJK ships as CFF outlines, which reportlab cannot embed; Zen Hei is TrueType so reportlab subsets it into
/FontFile2. Without the font a record would render as tofu (empty boxes), so a missing font is a hard error.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

log = logging.getLogger(__name__)

WQY_ZENHEI_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
CJK_FONT_NAME = "WenQuanYiZenHei"

_lock = threading.Lock()


class FontMissing(RuntimeError):
    """The CJK font file is not installed, so records cannot be rendered faithfully."""


def cjk_font(path: Path = WQY_ZENHEI_PATH) -> str:
    """Register the CJK TrueType font with reportlab once per process and return its name."""
    path = Path(path)
    # Checked on every call: a font removed after start must still stop rendering rather than yield tofu.
    if not path.is_file():
        raise FontMissing(
            f"CJK font {path} is missing; install the Debian package fonts-wqy-zenhei "
            "(records are never rendered without it)")
    name = CJK_FONT_NAME
    if path != WQY_ZENHEI_PATH:
        name += "-" + hashlib.sha256(str(path).encode()).hexdigest()[:8]
    with _lock:
        try:
            pdfmetrics.getFont(name)
            return name
        except KeyError:
            pass
        try:
            font = TTFont(name, str(path), subfontIndex=0)
        except Exception as err:  # reportlab raises several types for unreadable fonts
            raise FontMissing(f"CJK font {path} could not be loaded: {err}") from err
        pdfmetrics.registerFont(font)
        log.debug("registered %s from %s", name, path)
        return name
