"""The platform's domain modules, in one list.

A route module exposes `api` (web.api.Api) and may define `register_jobs(app, registry)`, `cleanup_ctx(app)`
(an async generator, like aiohttp's), `middleware` (an aiohttp middleware, run after authentication) and
`async seed_demo(sessions, console, progress, options)`.
A models module only needs importing so that Base.metadata knows its tables.
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

MODEL_MODULES = [
    "core.identity_models", "core.idempotency_models", "core.notifications", "core.scheduler_models",
    "identity.models",
    "evidence.ledger_models", "evidence.records_models",
    "trading.models",
    "expert_pool.models",
    "intermediary_market.models",
    "evaluation.models", "evaluation.media.models",
]

ROUTE_MODULES = [
    "identity.routes", "identity.notification_routes", "identity.enrolment_routes",
    "evidence.ledger_routes", "evidence.records_routes",
    # listing before tenders: /tenders/feed.atom must match before /tenders/{code}
    "trading.routes.listing", "trading.routes.tenders", "trading.routes.bids",
    "expert_pool.routes",
    "intermediary_market.routes",
    "evaluation.routes", "evaluation.report_routes", "evaluation.material_routes",
    "evaluation.media.routes", "evaluation.media.playback_routes", "evaluation.media.worker_routes",
    "evaluation.media.device_routes",
]


def _present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def load(names: list[str]) -> list[ModuleType]:
    """Import the listed modules that exist in this build (domains land one by one)."""
    return [importlib.import_module(n) for n in names if _present(n)]
