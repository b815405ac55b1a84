"""Server-rendered pages: Jinja2 templates (web/templates) through aiohttp-jinja2, the catalogues of
web/locale, the cookie session with its CSRF token, and npm libraries served from node_modules.

`setup(app)` mounts everything; each area of pages is a module with a `pages` table (`routing.Pages`)."""
from __future__ import annotations

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from core.settings import Settings

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def environment_options() -> dict:
    return {"loader": jinja2.FileSystemLoader(str(TEMPLATES)), "autoescape": True,
            "extensions": ["jinja2.ext.i18n"], "trim_blocks": True, "lstrip_blocks": True,
            "auto_reload": False}  # templates ship with the code: no stat() of every template on every page


def install_gettext(env: jinja2.Environment) -> None:
    """`_()` and `gettext()` call the catalogue directly: the result is plain text, escaped on output like any
    value (placeholders are filled before escaping, so a value cannot inject markup). Jinja's own alias goes
    through the template context on every call, which cost a third of the tender list's rendering."""
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)
    env.globals.update(_=i18n.gettext, gettext=i18n.gettext, ngettext=i18n.ngettext)


def setup(app: web.Application, settings: Settings) -> None:
    from web.pages import (admin, agent, bidder, common, developer, expert, i18n, media, public, routing, session,
                           supervisor, tender_desk, tender_wizard, vendor)

    env = aiohttp_jinja2.setup(app, **environment_options())
    install_gettext(env)
    env.globals.update(languages=i18n.LANGUAGES)
    i18n.load_all()
    app[session.CSRF_KEY] = session.load_csrf_key(settings.keys_dir)
    # the wizard's /manage/tenders/new before the desk's /manage/tenders/{code}
    for module in (common, public, bidder, developer, expert, supervisor, media, tender_wizard, tender_desk, agent, admin):
        app.router.add_routes(module.pages.table)
    app.router.add_get(vendor.PREFIX + "{path:.+}", vendor.serve)
    if not vendor.installed():
        log.warning("no browser libraries in %s: run `npm ci` (make does); until then the sealed submission in the "
                    "browser and the API reference page cannot load their scripts", vendor.NODE_MODULES)
    _ = routing  # the middleware lives there (web.app installs it)
