"""Media plane: which process records a segment (media_segment.recorder), so that a segment left open by a
process that died is closed from its file, or marked lost, by the next one.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('media_segment', sa.Column('recorder', sa.String(64), nullable=True))
    op.create_index('media_segment_open_idx', 'media_segment', ['recorder'],
                    postgresql_where=sa.text('ended_at IS NULL'))


def downgrade() -> None:
    op.drop_index('media_segment_open_idx', table_name='media_segment')
    op.drop_column('media_segment', 'recorder')
