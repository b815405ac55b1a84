"""The pages' catalogues: every string the templates and page modules mark is translated in both languages,
with the same placeholders; how amounts and languages read; which npm files are served and how imports resolve."""
import re
from decimal import Decimal

from web.pages import catalogue, i18n, vendor

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_every_marked_string_is_in_both_catalogues_and_translated():
    used = catalogue.extract()
    assert len(used) > 150  # the extraction really reads the templates and modules
    for lang in i18n.LANGUAGES:
        assert catalogue.missing(lang) == [], f"untranslated in {lang}: run python -m web.pages.catalogue"


def test_translations_keep_the_placeholders_of_their_source():
    for lang in i18n.LANGUAGES:
        for message in catalogue.read(lang):
            if message.id and message.string:
                assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string)), message.id
                assert "%" not in PLACEHOLDER.sub("", message.string), message.id  # a stray % breaks formatting


def test_catalogues_compile_and_translate():
    token = i18n.activate("zh_CN")
    try:
        assert i18n.gettext("Tenders") == "招标公告"
        assert i18n.gettext("Bid deadline moved from %(before)s to %(after)s", before="A", after="B") == \
            "投标截止时间由 A 延至 B"
    finally:
        i18n._current.reset(token)


def test_amounts_read_in_wan_yuan_for_chinese_readers_and_in_yuan_for_english():
    token = i18n.activate("zh_CN")
    try:
        assert i18n.money(Decimal("8600000.00")) == "860.00 万元"
        assert i18n.money("9999.5") == "¥9,999.50"
    finally:
        i18n._current.reset(token)
    token = i18n.activate("en")
    try:
        assert i18n.money(Decimal("8600000.00")) == "¥8,600,000.00"
        assert i18n.money(Decimal("12.5"), "USD") == "12.50 USD"
    finally:
        i18n._current.reset(token)


def test_the_language_comes_from_the_cookie_then_accept_language_then_chinese():
    assert i18n.negotiate("en", "zh-CN,zh;q=0.9") == "en"
    assert i18n.negotiate(None, "fr-FR, en-GB;q=0.8, zh;q=0.5") == "en"
    assert i18n.negotiate("xx", "zh-TW") == "zh_CN"
    assert i18n.negotiate(None, "fr-FR") == "zh_CN"
    assert i18n.negotiate(None, None) == "zh_CN"


def test_vendor_modules_resolve_bare_imports_and_nothing_else_is_served():
    body, ctype = vendor.load("age-encryption/dist/recipients.js")
    assert ctype == "text/javascript"
    imports = set(re.findall(rb'from\s*"([^"]+)"', body))
    assert b"/static/vendor/@noble/hashes/sha2.js" in imports and b"/static/vendor/@scure/base/index.js" in imports
    assert all(i.startswith((b"./", b"/static/vendor/")) for i in imports)
    assert vendor.load("swagger-ui-dist/swagger-ui-bundle.js") is not None
    for refused in ("swagger-ui-dist/index.html", "age-encryption/package.json", "age-encryption/../../pyproject.toml",
                    "@noble/hashes/../../../web/app.py", "@noble/hashes/../../axe-core/axe.min.js", "axe-core/axe.min.js", "left-pad/index.js"):
        assert vendor.load(refused) is None, refused
