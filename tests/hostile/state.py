"""What "no state change" means for the hostile corpus: the rows of every table a refused request could touch."""
from __future__ import annotations

TABLES = ("app_user", "organisation", "audit_entry", "expert", "tender", "lot", "idempotent_request",
          "notification")


async def snapshot(raw_conn) -> dict[str, int]:
    """Row counts of TABLES (those this build has)."""
    present = {r["table_name"] for r in await raw_conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    return {t: await raw_conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in TABLES if t in present}
