"""Browser libraries from npm, served from node_modules (installed by `npm ci`; nothing is copied into the
repository) under /static/vendor/<package>/<file>.

Only listed packages are served: plain files (the API reference's bundle and stylesheet) by exact path, and the
ES modules of age-encryption with their dependencies, any `.js` file of theirs. Without a bundler or an inline
import map (the CSP allows no inline script), a module's bare imports (`@noble/hashes/sha2.js`) are rewritten
to /static/vendor/ URLs, resolved through each package's `exports` as Node would."""
from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

from aiohttp import web

NODE_MODULES = Path(os.environ.get("BIDROOM_NODE_MODULES") or Path(__file__).resolve().parents[2] / "node_modules")
PREFIX = "/static/vendor/"
# packages whose ES modules the pages import (age-encryption and what it imports)
ESM_PACKAGES = ("age-encryption", "@noble/ciphers", "@noble/curves", "@noble/hashes", "@noble/post-quantum",
                "@scure/base")
FILES = {"swagger-ui-dist": ("swagger-ui-bundle.js", "swagger-ui.css")}
TYPES = {".js": "text/javascript", ".css": "text/css"}
IMPORT_RE = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])([^"'./][^"']*)\2""")


def split_specifier(spec: str) -> tuple[str, str]:
    parts = spec.split("/")
    n = 2 if spec.startswith("@") else 1
    return "/".join(parts[:n]), "/".join(parts[n:])


@lru_cache(maxsize=None)
def _package_json(package: str) -> dict:
    return json.loads((NODE_MODULES / package / "package.json").read_text())


def resolve(spec: str) -> str:
    """A bare specifier as a URL under /static/vendor/, by the package's `exports` (or `module`/`main`)."""
    package, sub = split_specifier(spec)
    meta = _package_json(package)
    exports = meta.get("exports")
    key = "./" + sub if sub else "."
    target = None
    if isinstance(exports, str) and key == ".":
        target = exports
    elif isinstance(exports, dict):
        entry = exports.get(key)
        if isinstance(entry, dict):
            entry = entry.get("import") or entry.get("default")
        target = entry if isinstance(entry, str) else None
    if target is None:
        target = sub if sub else (meta.get("module") or meta.get("main") or "index.js")
    return PREFIX + package + "/" + target.removeprefix("./")


def _rewrite(source: str) -> str:
    return IMPORT_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{resolve(m.group(3))}{m.group(2)}", source)


def _locate(rel: str) -> tuple[Path, bool] | None:
    """The file for a vendor path, and whether it is an ES module to rewrite; None when it is not served."""
    for package in ESM_PACKAGES:
        if rel.startswith(package + "/") and rel.endswith(".js"):
            root = (NODE_MODULES / package).resolve()
            path = (NODE_MODULES / rel).resolve()
            return (path, True) if path.is_relative_to(root) and path.is_file() else None
    for package, files in FILES.items():
        for name in files:
            if rel == f"{package}/{name}":
                path = NODE_MODULES / rel
                return (path, False) if path.is_file() else None
    return None


@lru_cache(maxsize=256)
def load(rel: str) -> tuple[bytes, str] | None:
    found = _locate(rel)
    if found is None:
        return None
    path, esm = found
    data = path.read_bytes()
    if esm:
        data = _rewrite(data.decode()).encode()
    return data, TYPES[path.suffix]


async def serve(request: web.Request) -> web.Response:
    loaded = load(request.match_info["path"])
    if loaded is None:
        raise web.HTTPNotFound()
    body, ctype = loaded
    return web.Response(body=body, content_type=ctype, charset="utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})


def installed() -> bool:
    return (NODE_MODULES / "age-encryption" / "package.json").is_file()
