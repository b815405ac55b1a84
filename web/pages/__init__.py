"""Server-rendered pages: Jinja2 templates (web/templates) through aiohttp-jinja2, the catalogues of
web/locale, the cookie session with its CSRF token, and npm libraries served from node_modules.

`setup(app)` mounts everything; each area of pages is a module with a `pages` table (`routing.Pages`)."""
from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from core.settings import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def environment_options() -> dict:
    return {"loader": jinja2.FileSystemLoader(str(TEMPLATES)), "autoescape": True,
            "extensions": ["jinja2.ext.i18n"], "trim_blocks": True, "lstrip_blocks": True}


def setup(app: web.Application, settings: Settings) -> None:
    from web.pages import admin, agent, bidder, common, developer, expert, i18n, public, routing, session, supervisor, vendor

    env = aiohttp_jinja2.setup(app, **environment_options())
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)
    env.globals.update(languages=i18n.LANGUAGES)
    i18n.load_all()
    app[session.CSRF_KEY] = session.load_csrf_key(settings.keys_dir)
    for module in (common, public, bidder, developer, expert, supervisor, agent, admin):
        app.router.add_routes(module.pages.table)
    app.router.add_get(vendor.PREFIX + "{path:.+}", vendor.serve)
    _ = routing  # the middleware lives there (web.app installs it)
