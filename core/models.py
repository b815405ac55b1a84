"""Imports every ORM module so that Base.metadata knows all tables (for Alembic and tests)."""
from core import domains
from core.db import Base

domains.load(domains.MODEL_MODULES)
metadata = Base.metadata
