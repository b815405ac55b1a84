"""Layers point one way: web → domain routes → services → rules/models → core/evidence.

The imports of every module are parsed (lazy imports inside functions included), so a wrong-way edge fails here
the moment it is written, whoever writes it.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "evidence", "identity", "trading", "expert_pool", "evaluation", "intermediary_market", "web")
DOMAINS = ("identity", "trading", "expert_pool", "evaluation", "intermediary_market")
# a domain may build on the domains before it in this order, never on one after it (or beside it). Accounts
# themselves live in core; the identity package is their HTTP face and links pool experts to accounts.
DOMAIN_ORDER = {"trading": 1, "expert_pool": 2, "intermediary_market": 2, "identity": 3, "evaluation": 3}


def is_route_module(path: Path) -> bool:
    return path.name == "routes.py" or path.name.endswith("_routes.py") or "routes" in path.parent.parts


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found.append((package, path))
    return found


def imported(path: Path) -> set[str]:
    """Every module name `path` imports, at the top or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def top(name: str) -> str:
    return name.split(".", 1)[0]


def wrong_way_edges() -> list[str]:
    edges = []
    for package, path in modules():
        where = path.relative_to(ROOT).as_posix()
        for name in imported(path):
            target = top(name)
            if target == "web" and package != "web" and not is_route_module(path):
                edges.append(f"{where} imports {name}: only route modules may use web/")
            if package in ("core", "evidence") and target in DOMAINS:
                edges.append(f"{where} imports {name}: core and evidence sit below every domain")
            if package in DOMAIN_ORDER and target in DOMAIN_ORDER and target != package \
                    and DOMAIN_ORDER[target] >= DOMAIN_ORDER[package]:
                edges.append(f"{where} imports {name}: {package} may not build on {target}")
            if (not is_route_module(path) and package != "web" and target in PACKAGES
                    and (name.endswith(".routes") or name.endswith("_routes"))):
                edges.append(f"{where} imports {name}: services, rules and models never import route modules")
    return sorted(edges)


def test_no_module_imports_against_the_layering():
    assert wrong_way_edges() == []


def test_the_import_scan_sees_the_web_layer_and_lazy_imports(tmp_path):
    # the scan itself must notice a lazy wrong-way import, or the test above proves nothing
    sample = tmp_path / "service.py"
    sample.write_text("def f():\n    from web.keys import db\n    import trading.routes\n", encoding="utf-8")
    assert imported(sample) == {"web.keys", "trading.routes"}
    assert is_route_module(Path("trading/routes.py")) and is_route_module(Path("core/identity_routes.py"))
    assert not is_route_module(Path("trading/service.py"))
