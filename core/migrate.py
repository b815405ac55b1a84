"""Running Alembic migrations from code (CLI, server start and tests)."""
from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini)) if ini.exists() else Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Upgrade synchronously to every head (domains branch from a shared base; call from a thread in a loop)."""
    command.upgrade(alembic_config(database_url), revision)


@functools.cache
def script_heads() -> frozenset[str]:
    """The head revisions this build's migrations end at (one per domain branch); read once per process."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())
