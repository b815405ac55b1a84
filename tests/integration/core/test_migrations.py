"""The migrations produce exactly the schema the ORM models describe."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import create_engine
from core.models import metadata


async def test_migrated_schema_matches_the_models(db_url):
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata))
    finally:
        await engine.dispose()
    assert diff == []
