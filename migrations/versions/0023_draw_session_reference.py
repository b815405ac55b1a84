"""The draw's venue refers to the evaluation session: expert_draw.evaluation_session holds the session's public id
(opaque to the expert pool, which sits below evaluation: no foreign key), written when the draw names the session
or when the session is scheduled for the draw's lot.

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-01 23:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('expert_draw', sa.Column('evaluation_session', sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column('expert_draw', 'evaluation_session')
