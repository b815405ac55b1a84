"""Imports every ORM module so that Base.metadata knows all tables (for Alembic and tests)."""
from core import identity_models, idempotency_models, notifications, scheduler_models  # noqa: F401
from core.db import Base
from evidence import ledger_models  # noqa: F401

metadata = Base.metadata
