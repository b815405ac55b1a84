"""Candidates from the committee's report: each published candidate names the sealed evaluation report (评标报告)
and its revision it comes from; an objection's answer says whether it was upheld (异议成立), which sends the lot
back to its committee for re-evaluation.

Revision ID: 0022
Revises: 0019
Create Date: 2026-12-01 23:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('award_candidate', sa.Column('report_no', sa.String(32), nullable=True))
    op.add_column('award_candidate', sa.Column('report_revision', sa.Integer(), nullable=True))
    op.create_check_constraint(op.f('award_candidate_report_with_revision_check'), 'award_candidate',
                               '(report_no IS NULL) = (report_revision IS NULL)')
    op.add_column('objection', sa.Column('upheld', sa.Boolean(), nullable=True))
    op.add_column('objection', sa.Column('lot_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f('objection_lot_id_fkey'), 'objection', 'lot', ['lot_id'], ['id'])
    op.create_check_constraint(op.f('objection_upheld_when_answered_check'), 'objection',
                               'upheld IS NULL OR answer IS NOT NULL')


def downgrade() -> None:
    op.drop_constraint(op.f('objection_upheld_when_answered_check'), 'objection', type_='check')
    op.drop_constraint(op.f('objection_lot_id_fkey'), 'objection', type_='foreignkey')
    op.drop_column('objection', 'lot_id')
    op.drop_column('objection', 'upheld')
    op.drop_constraint(op.f('award_candidate_report_with_revision_check'), 'award_candidate', type_='check')
    op.drop_column('award_candidate', 'report_revision')
    op.drop_column('award_candidate', 'report_no')
