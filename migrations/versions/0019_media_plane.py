"""Media plane: recorded segments per place of a session, media workers, and the session-to-worker assignment.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 23:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'media_segment',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('public_id', sa.String(16), nullable=False),
        sa.Column('session_id', sa.BigInteger(), sa.ForeignKey('evaluation_session.id'), nullable=False),
        sa.Column('place_id', sa.BigInteger(), sa.ForeignKey('venue_place.id'), nullable=False),
        sa.Column('publisher_user_id', sa.BigInteger(), sa.ForeignKey('app_user.id'), nullable=True),
        sa.Column('publication', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('storage_key', sa.String(300), nullable=False),
        sa.Column('started_at', TZ, nullable=False),
        sa.Column('ended_at', TZ, nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=True),
        sa.Column('video_frames', sa.Integer(), nullable=True),
        sa.Column('audio_frames', sa.Integer(), nullable=True),
        sa.Column('size_bytes', sa.BigInteger(), nullable=True),
        sa.Column('sha256', sa.String(64), nullable=True),
        sa.Column('removed_at', TZ, nullable=True),
        sa.Column('created_at', TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint('publication >= 1 AND seq >= 1', name=op.f('media_segment_numbers_positive_check')),
        sa.UniqueConstraint('session_id', 'place_id', 'publication', 'seq'),
        sa.UniqueConstraint('public_id'),
    )
    op.create_index(op.f('media_segment_session_id_idx'), 'media_segment', ['session_id'])
    op.create_index(op.f('media_segment_place_id_idx'), 'media_segment', ['place_id'])
    op.create_table(
        'media_worker',
        sa.Column('id', sa.String(64), primary_key=True),
        sa.Column('base_url', sa.String(300), nullable=False),
        sa.Column('started_at', TZ, server_default=sa.func.now(), nullable=False),
        sa.Column('heartbeat_at', TZ, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        'media_assignment',
        sa.Column('session_id', sa.BigInteger(), sa.ForeignKey('evaluation_session.id'), primary_key=True),
        sa.Column('worker_id', sa.String(64), sa.ForeignKey('media_worker.id'), nullable=False),
        sa.Column('assigned_at', TZ, server_default=sa.func.now(), nullable=False),
    )
    op.create_index(op.f('media_assignment_worker_id_idx'), 'media_assignment', ['worker_id'])


def downgrade() -> None:
    op.drop_table('media_assignment')
    op.drop_table('media_worker')
    op.drop_table('media_segment')
