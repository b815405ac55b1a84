"""Trading: tenders get an optional English title, and their search terms cover it and their lots' titles.

The search terms are computed in Python (trading.listing.search_terms), so the public tenders are re-indexed here
with that function, a batch at a time.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BATCH = 1000


def _reindex() -> None:
    from trading.listing.search_terms import tender_terms  # the same function the platform indexes with

    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.text(
            "SELECT t.id, t.title, t.title_en, t.code, t.description, o.name AS tenderer, "
            "coalesce((SELECT array_agg(l.title ORDER BY l.lot_no) FROM lot l WHERE l.tender_id = t.id), "
            "'{}') AS lots FROM tender t JOIN organisation o ON o.id = t.tenderer_id "
            "WHERE t.status <> 'draft' AND t.id > :last ORDER BY t.id LIMIT :n"), {"last": last, "n": BATCH}).all()
        if not rows:
            return
        conn.execute(sa.text("UPDATE tender SET search_terms = :terms WHERE id = :id"),
                     [{"id": r.id, "terms": tender_terms(r.title, r.code, r.description, r.tenderer, r.lots,
                                                         r.title_en)} for r in rows])
        last = rows[-1].id


def upgrade() -> None:
    op.add_column('tender', sa.Column('title_en', sa.String(length=300), nullable=True))
    _reindex()


def downgrade() -> None:
    op.drop_column('tender', 'title_en')
