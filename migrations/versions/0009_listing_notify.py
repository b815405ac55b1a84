"""Trading: tell every server process when the public listing's data changes.

Each process keeps recently served listing pages in memory (trading/listing_cache.py) and LISTENs on
`bidroom_listing`. Statement-level triggers on the tables the listing reads (tender, and organisation for the
tenderer's name) send one notification per changing statement, delivered at commit, so a page is dropped by every
process as soon as a change it could show becomes visible.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 21:00:00
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION listing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('bidroom_listing', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$""")
    op.execute("CREATE TRIGGER tender_listing_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tender "
               "FOR EACH STATEMENT EXECUTE FUNCTION listing_changed()")
    op.execute("CREATE TRIGGER organisation_listing_changed AFTER UPDATE OR DELETE OR TRUNCATE ON organisation "
               "FOR EACH STATEMENT EXECUTE FUNCTION listing_changed()")


def downgrade() -> None:
    op.execute("DROP TRIGGER organisation_listing_changed ON organisation")
    op.execute("DROP TRIGGER tender_listing_changed ON tender")
    op.execute("DROP FUNCTION listing_changed()")
