"""core/ is the bottom layer: none of its modules imports the web layer or a domain package (identity included),
so identity and notifications reach HTTP only through identity/*routes.py."""
import ast
from pathlib import Path

import core

UPPER_LAYERS = {"web", "identity", "trading", "expert_pool", "intermediary_market", "evaluation"}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports, wherever the import statement sits (functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_no_core_module_imports_the_web_layer_or_a_domain():
    modules = sorted(Path(core.__file__).parent.glob("*.py"))
    assert len(modules) > 10
    wrong = {path.name: sorted(imported_packages(path) & UPPER_LAYERS) for path in modules}
    assert {name: found for name, found in wrong.items() if found} == {}


def test_the_identity_and_notification_routes_live_in_the_identity_domain():
    from core import domains
    assert not any(name.startswith("core.") for name in domains.ROUTE_MODULES)
    for name in ("identity.routes", "identity.notification_routes", "identity.enrolment_routes"):
        assert name in domains.ROUTE_MODULES
        assert domains.load([name])[0].api.specs
