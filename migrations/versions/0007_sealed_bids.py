"""Sealed bids: holder keys, tender key holders and shares, bids, openings, candidates, objections, awards.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-25 09:24:59.053225
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('holder_key',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), server_default='person', nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('recipient', sa.String(length=100), nullable=False),
    sa.Column('wrapped_identity', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(kind = 'person') = (user_id IS NOT NULL)", name=op.f('holder_key_person_has_user_check')),
    sa.CheckConstraint("kind IN ('person', 'platform')", name=op.f('holder_key_kind_known_check')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('holder_key_user_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('holder_key_pkey'))
    )
    op.create_index('holder_key_current_platform_idx', 'holder_key', ['kind'], unique=True, postgresql_where=sa.text("retired_at IS NULL AND kind = 'platform'"))
    op.create_index('holder_key_current_user_idx', 'holder_key', ['user_id'], unique=True, postgresql_where=sa.text("retired_at IS NULL AND kind = 'person'"))
    op.create_index(op.f('holder_key_user_id_idx'), 'holder_key', ['user_id'], unique=False)
    op.create_table('objection',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('organisation_id', sa.BigInteger(), nullable=False),
    sa.Column('filed_by_id', sa.BigInteger(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('filed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_by_id', sa.BigInteger(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['answered_by_id'], ['app_user.id'], name=op.f('objection_answered_by_id_fkey')),
    sa.ForeignKeyConstraint(['filed_by_id'], ['app_user.id'], name=op.f('objection_filed_by_id_fkey')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('objection_organisation_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('objection_tender_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('objection_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('objection_public_id_key'))
    )
    op.create_index(op.f('objection_tender_id_idx'), 'objection', ['tender_id'], unique=False)
    op.create_table('tender_key_holder',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('holder_key_id', sa.BigInteger(), nullable=True),
    sa.Column('encrypted_share', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['holder_key_id'], ['holder_key.id'], name=op.f('tender_key_holder_holder_key_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('tender_key_holder_tender_id_fkey')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('tender_key_holder_user_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('tender_key_holder_pkey')),
    sa.UniqueConstraint('tender_id', 'position', name='tender_key_holder_tender_id_position_key')
    )
    op.create_index('tender_key_holder_person_idx', 'tender_key_holder', ['tender_id', 'user_id'], unique=True, postgresql_where=sa.text('user_id IS NOT NULL'))
    op.create_index(op.f('tender_key_holder_tender_id_idx'), 'tender_key_holder', ['tender_id'], unique=False)
    op.create_table('tender_opening',
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('started_by_id', sa.BigInteger(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('valid_bids', sa.Integer(), nullable=True),
    sa.Column('record_no', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['started_by_id'], ['app_user.id'], name=op.f('tender_opening_started_by_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('tender_opening_tender_id_fkey')),
    sa.PrimaryKeyConstraint('tender_id', name=op.f('tender_opening_pkey'))
    )
    op.create_table('bid',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=False),
    sa.Column('organisation_id', sa.BigInteger(), nullable=False),
    sa.Column('submitted_by_id', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='submitted', nullable=False),
    sa.Column('replaces_id', sa.BigInteger(), nullable=True),
    sa.Column('storage_key', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sealed_by', sa.String(length=8), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawal_kind', sa.String(length=8), nullable=True),
    sa.Column('withdrawal_cause', sa.Text(), nullable=True),
    sa.Column('price', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('duration_days', sa.Integer(), nullable=True),
    sa.Column('declared', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('documents', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("sealed_by IN ('client', 'server')", name=op.f('bid_sealed_by_known_check')),
    sa.CheckConstraint("status IN ('submitted', 'replaced', 'withdrawn', 'opened', 'invalid')", name=op.f('bid_status_known_check')),
    sa.CheckConstraint('price IS NULL OR price > 0', name=op.f('bid_price_positive_check')),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('bid_lot_id_fkey')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('bid_organisation_id_fkey')),
    sa.ForeignKeyConstraint(['replaces_id'], ['bid.id'], name=op.f('bid_replaces_id_fkey')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['app_user.id'], name=op.f('bid_submitted_by_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('bid_tender_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('bid_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('bid_public_id_key'))
    )
    op.create_index('bid_live_idx', 'bid', ['lot_id', 'organisation_id'], unique=True, postgresql_where=sa.text("status = 'submitted'"))
    op.create_index(op.f('bid_lot_id_idx'), 'bid', ['lot_id'], unique=False)
    op.create_index(op.f('bid_organisation_id_idx'), 'bid', ['organisation_id'], unique=False)
    op.create_index(op.f('bid_tender_id_idx'), 'bid', ['tender_id'], unique=False)
    op.create_table('opening_share',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('tender_key_holder_id', sa.BigInteger(), nullable=False),
    sa.Column('sealed_share', sa.LargeBinary(), nullable=False),
    sa.Column('unlocked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('opening_share_tender_id_fkey')),
    sa.ForeignKeyConstraint(['tender_key_holder_id'], ['tender_key_holder.id'], name=op.f('opening_share_tender_key_holder_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('opening_share_pkey')),
    sa.UniqueConstraint('tender_key_holder_id', name='opening_share_tender_key_holder_id_key')
    )
    op.create_index(op.f('opening_share_tender_id_idx'), 'opening_share', ['tender_id'], unique=False)
    op.create_table('award',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=False),
    sa.Column('bid_id', sa.BigInteger(), nullable=False),
    sa.Column('price', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('record_no', sa.String(length=32), nullable=False),
    sa.Column('awarded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bid.id'], name=op.f('award_bid_id_fkey')),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('award_lot_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('award_tender_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('award_pkey')),
    sa.UniqueConstraint('lot_id', name='award_lot_id_key')
    )
    op.create_index(op.f('award_tender_id_idx'), 'award', ['tender_id'], unique=False)
    op.create_table('award_candidate',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=False),
    sa.Column('bid_id', sa.BigInteger(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('score', sa.Numeric(precision=8, scale=2), nullable=True),
    sa.Column('publicity_ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bid.id'], name=op.f('award_candidate_bid_id_fkey')),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('award_candidate_lot_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('award_candidate_tender_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('award_candidate_pkey')),
    sa.UniqueConstraint('lot_id', 'rank', name='award_candidate_lot_id_rank_key')
    )
    op.create_index(op.f('award_candidate_tender_id_idx'), 'award_candidate', ['tender_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('award_candidate_tender_id_idx'), table_name='award_candidate')
    op.drop_table('award_candidate')
    op.drop_index(op.f('award_tender_id_idx'), table_name='award')
    op.drop_table('award')
    op.drop_index(op.f('opening_share_tender_id_idx'), table_name='opening_share')
    op.drop_table('opening_share')
    op.drop_index(op.f('bid_tender_id_idx'), table_name='bid')
    op.drop_index(op.f('bid_organisation_id_idx'), table_name='bid')
    op.drop_index(op.f('bid_lot_id_idx'), table_name='bid')
    op.drop_index('bid_live_idx', table_name='bid', postgresql_where=sa.text("status = 'submitted'"))
    op.drop_table('bid')
    op.drop_table('tender_opening')
    op.drop_index(op.f('tender_key_holder_tender_id_idx'), table_name='tender_key_holder')
    op.drop_index('tender_key_holder_person_idx', table_name='tender_key_holder', postgresql_where=sa.text('user_id IS NOT NULL'))
    op.drop_table('tender_key_holder')
    op.drop_index(op.f('objection_tender_id_idx'), table_name='objection')
    op.drop_table('objection')
    op.drop_index(op.f('holder_key_user_id_idx'), table_name='holder_key')
    op.drop_index('holder_key_current_user_idx', table_name='holder_key', postgresql_where=sa.text("retired_at IS NULL AND kind = 'person'"))
    op.drop_index('holder_key_current_platform_idx', table_name='holder_key', postgresql_where=sa.text("retired_at IS NULL AND kind = 'platform'"))
    op.drop_table('holder_key')
