"""Expert pool: experts with leave, declared conflicts and service history; expert draws, their exclusions
and invitations.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-25 07:11:42.977563
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('expert',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('id_card_no', sa.String(length=18), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('province_code', sa.String(length=6), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('employer_id', sa.BigInteger(), nullable=True),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=50), server_default='', nullable=False),
    sa.Column('specialties', postgresql.ARRAY(sa.String(length=8)), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('credit_score', sa.Numeric(precision=5, scale=2), server_default='100', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("category IN ('technical', 'economic')", name=op.f('expert_category_known_check')),
    sa.CheckConstraint("status IN ('active', 'suspended', 'retired')", name=op.f('expert_status_known_check')),
    sa.ForeignKeyConstraint(['employer_id'], ['organisation.id'], name=op.f('expert_employer_id_fkey')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('expert_user_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('expert_pkey')),
    sa.UniqueConstraint('id_card_no', name=op.f('expert_id_card_no_key')),
    sa.UniqueConstraint('public_id', name=op.f('expert_public_id_key')),
    sa.UniqueConstraint('user_id', name=op.f('expert_user_id_key'))
    )
    op.create_index(op.f('expert_city_code_idx'), 'expert', ['city_code'], unique=False)
    op.create_index(op.f('expert_employer_id_idx'), 'expert', ['employer_id'], unique=False)
    op.create_index('expert_specialties_idx', 'expert', ['specialties'], unique=False, postgresql_using='gin')
    op.create_table('expert_conflict',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('expert_id', sa.BigInteger(), nullable=False),
    sa.Column('organisation_id', sa.BigInteger(), nullable=False),
    sa.Column('note', sa.String(length=200), server_default='', nullable=False),
    sa.Column('declared_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], name=op.f('expert_conflict_expert_id_fkey'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('expert_conflict_organisation_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('expert_conflict_pkey')),
    sa.UniqueConstraint('expert_id', 'organisation_id', name='expert_conflict_expert_id_org_key')
    )
    op.create_index(op.f('expert_conflict_expert_id_idx'), 'expert_conflict', ['expert_id'], unique=False)
    op.create_index(op.f('expert_conflict_organisation_id_idx'), 'expert_conflict', ['organisation_id'], unique=False)
    op.create_table('expert_leave',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('expert_id', sa.BigInteger(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=200), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('expert_leave_ends_after_start_check')),
    sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], name=op.f('expert_leave_expert_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('expert_leave_pkey'))
    )
    op.create_index(op.f('expert_leave_expert_id_idx'), 'expert_leave', ['expert_id'], unique=False)
    op.create_table('expert_draw',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=False),
    sa.Column('parent_id', sa.BigInteger(), nullable=True),
    sa.Column('round', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requested_by_id', sa.BigInteger(), nullable=True),
    sa.Column('session_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('venue', sa.String(length=200), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.Column('representatives', sa.Integer(), server_default='0', nullable=False),
    sa.Column('reply_window_s', sa.Integer(), nullable=False),
    sa.Column('quotas', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('context', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('request', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('candidates', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('candidates_digest', sa.String(length=64), nullable=False),
    sa.Column('considered_count', sa.Integer(), nullable=False),
    sa.Column('eligible_count', sa.Integer(), nullable=False),
    sa.Column('exclusion_counts', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('secret', sa.LargeBinary(), nullable=False),
    sa.Column('commitment', sa.String(length=64), nullable=False),
    sa.Column('entropy', sa.Text(), nullable=True),
    sa.Column('entropy_by_id', sa.BigInteger(), nullable=True),
    sa.Column('executed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seed', sa.String(length=64), nullable=True),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('status', sa.String(length=24), server_default='awaiting_entropy', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('awaiting_entropy', 'executed', 'formed', 'short')", name=op.f('expert_draw_status_known_check')),
    sa.CheckConstraint('(parent_id IS NULL) = (round = 0)', name=op.f('expert_draw_round_matches_parent_check')),
    sa.ForeignKeyConstraint(['entropy_by_id'], ['app_user.id'], name=op.f('expert_draw_entropy_by_id_fkey')),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('expert_draw_lot_id_fkey')),
    sa.ForeignKeyConstraint(['parent_id'], ['expert_draw.id'], name=op.f('expert_draw_parent_id_fkey')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['app_user.id'], name=op.f('expert_draw_requested_by_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('expert_draw_tender_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('expert_draw_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('expert_draw_public_id_key'))
    )
    op.create_index(op.f('expert_draw_lot_id_idx'), 'expert_draw', ['lot_id'], unique=False)
    op.create_index(op.f('expert_draw_parent_id_idx'), 'expert_draw', ['parent_id'], unique=False)
    op.create_index(op.f('expert_draw_tender_id_idx'), 'expert_draw', ['tender_id'], unique=False)
    op.create_table('expert_draw_exclusion',
    sa.Column('draw_id', sa.BigInteger(), nullable=False),
    sa.Column('expert_id', sa.BigInteger(), nullable=False),
    sa.Column('reasons', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.ForeignKeyConstraint(['draw_id'], ['expert_draw.id'], name=op.f('expert_draw_exclusion_draw_id_fkey'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], name=op.f('expert_draw_exclusion_expert_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('draw_id', 'expert_id', name='expert_draw_exclusion_pkey')
    )
    op.create_index(op.f('expert_draw_exclusion_expert_id_idx'), 'expert_draw_exclusion', ['expert_id'], unique=False)
    op.create_table('expert_invitation',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('root_draw_id', sa.BigInteger(), nullable=False),
    sa.Column('draw_id', sa.BigInteger(), nullable=False),
    sa.Column('expert_id', sa.BigInteger(), nullable=False),
    sa.Column('quota', sa.String(length=64), nullable=False),
    sa.Column('seat', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('reply_by', sa.DateTime(timezone=True), nullable=False),
    sa.Column('replied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decline_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("source IN ('primary', 'backup', 'supplementary')", name=op.f('expert_invitation_source_known_check')),
    sa.CheckConstraint("status IN ('pending', 'accepted', 'declined', 'expired')", name=op.f('expert_invitation_status_known_check')),
    sa.ForeignKeyConstraint(['draw_id'], ['expert_draw.id'], name=op.f('expert_invitation_draw_id_fkey')),
    sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], name=op.f('expert_invitation_expert_id_fkey')),
    sa.ForeignKeyConstraint(['root_draw_id'], ['expert_draw.id'], name=op.f('expert_invitation_root_draw_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('expert_invitation_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('expert_invitation_public_id_key')),
    sa.UniqueConstraint('root_draw_id', 'expert_id', name='expert_invitation_root_draw_id_expert_key')
    )
    op.create_index(op.f('expert_invitation_draw_id_idx'), 'expert_invitation', ['draw_id'], unique=False)
    op.create_index(op.f('expert_invitation_expert_id_idx'), 'expert_invitation', ['expert_id'], unique=False)
    op.create_index('expert_invitation_live_seat_idx', 'expert_invitation', ['root_draw_id', 'quota', 'seat'], unique=True, postgresql_where=sa.text("status IN ('pending', 'accepted')"))
    op.create_table('expert_service',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('expert_id', sa.BigInteger(), nullable=False),
    sa.Column('tenderer_id', sa.BigInteger(), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=True),
    sa.Column('lot_id', sa.BigInteger(), nullable=True),
    sa.Column('draw_id', sa.BigInteger(), nullable=True),
    sa.Column('served_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('role', sa.String(length=24), server_default='member', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['draw_id'], ['expert_draw.id'], name=op.f('expert_service_draw_id_fkey')),
    sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], name=op.f('expert_service_expert_id_fkey'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('expert_service_lot_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('expert_service_tender_id_fkey')),
    sa.ForeignKeyConstraint(['tenderer_id'], ['organisation.id'], name=op.f('expert_service_tenderer_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('expert_service_pkey'))
    )
    op.create_index(op.f('expert_service_draw_id_idx'), 'expert_service', ['draw_id'], unique=False)
    op.create_index('expert_service_expert_id_served_at_idx', 'expert_service', ['expert_id', 'served_at'], unique=False)
    op.create_index(op.f('expert_service_tenderer_id_idx'), 'expert_service', ['tenderer_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('expert_service_tenderer_id_idx'), table_name='expert_service')
    op.drop_index('expert_service_expert_id_served_at_idx', table_name='expert_service')
    op.drop_index(op.f('expert_service_draw_id_idx'), table_name='expert_service')
    op.drop_table('expert_service')
    op.drop_index('expert_invitation_live_seat_idx', table_name='expert_invitation', postgresql_where=sa.text("status IN ('pending', 'accepted')"))
    op.drop_index(op.f('expert_invitation_expert_id_idx'), table_name='expert_invitation')
    op.drop_index(op.f('expert_invitation_draw_id_idx'), table_name='expert_invitation')
    op.drop_table('expert_invitation')
    op.drop_index(op.f('expert_draw_exclusion_expert_id_idx'), table_name='expert_draw_exclusion')
    op.drop_table('expert_draw_exclusion')
    op.drop_index(op.f('expert_draw_tender_id_idx'), table_name='expert_draw')
    op.drop_index(op.f('expert_draw_parent_id_idx'), table_name='expert_draw')
    op.drop_index(op.f('expert_draw_lot_id_idx'), table_name='expert_draw')
    op.drop_table('expert_draw')
    op.drop_index(op.f('expert_leave_expert_id_idx'), table_name='expert_leave')
    op.drop_table('expert_leave')
    op.drop_index(op.f('expert_conflict_organisation_id_idx'), table_name='expert_conflict')
    op.drop_index(op.f('expert_conflict_expert_id_idx'), table_name='expert_conflict')
    op.drop_table('expert_conflict')
    op.drop_index('expert_specialties_idx', table_name='expert', postgresql_using='gin')
    op.drop_index(op.f('expert_employer_id_idx'), table_name='expert')
    op.drop_index(op.f('expert_city_code_idx'), table_name='expert')
    op.drop_table('expert')
