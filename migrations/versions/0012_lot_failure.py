"""Trading: a lot records its failure (流标) — when, and why.

A lot with fewer than three bids at the opening fails without any bid being decrypted (招标投标法实施条例
第44条); one with fewer than three valid bids after the opening fails too. The failure is stored on the lot, so
a multi-lot tender goes on with the lots that have enough bids.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-01 20:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('lot', sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('lot', sa.Column('failure_reason', sa.String(length=40), nullable=True))
    op.add_column('lot', sa.Column('failure_bid_count', sa.Integer(), nullable=True))
    op.create_check_constraint(op.f('lot_failure_complete_check'), 'lot',
                               '(failed_at IS NULL) = (failure_reason IS NULL)')


def downgrade() -> None:
    op.drop_constraint(op.f('lot_failure_complete_check'), 'lot', type_='check')
    op.drop_column('lot', 'failure_bid_count')
    op.drop_column('lot', 'failure_reason')
    op.drop_column('lot', 'failed_at')
