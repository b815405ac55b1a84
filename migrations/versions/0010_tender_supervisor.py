"""Trading: each tender names its supervising organisation (行政监督部门).

Only supervisors of that organisation see the tender's draw identities, supply its draws' entropy and hold its
keys as supervisors. Later domain migrations branch from this revision.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 20:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('tender', sa.Column('supervisor_organisation_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f('tender_supervisor_organisation_id_fkey'), 'tender', 'organisation',
                          ['supervisor_organisation_id'], ['id'])
    op.create_index(op.f('tender_supervisor_organisation_id_idx'), 'tender', ['supervisor_organisation_id'])


def downgrade() -> None:
    op.drop_index(op.f('tender_supervisor_organisation_id_idx'), table_name='tender')
    op.drop_constraint(op.f('tender_supervisor_organisation_id_fkey'), 'tender', type_='foreignkey')
    op.drop_column('tender', 'supervisor_organisation_id')
