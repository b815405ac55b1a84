"""Trading core: tenders, lots, bidder registrations and tender code sequences.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 06:51:41.592940
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tender_sequence',
    sa.Column('region_code', sa.String(length=8), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('family', sa.String(length=8), nullable=False),
    sa.Column('last_seq', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('region_code', 'year', 'family', name=op.f('tender_sequence_pkey'))
    )
    op.create_table('tender',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('family', sa.String(length=8), nullable=False),
    sa.Column('subtype', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('region_code', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=24), server_default='draft', nullable=False),
    sa.Column('tenderer_id', sa.BigInteger(), nullable=False),
    sa.Column('agent_id', sa.BigInteger(), nullable=True),
    sa.Column('created_by_id', sa.BigInteger(), nullable=False),
    sa.Column('budget', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), server_default='CNY', nullable=False),
    sa.Column('evaluation', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('clarification_end_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('bid_deadline_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opening_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('age_recipient', sa.String(length=100), nullable=True),
    sa.Column('key_threshold', sa.Integer(), server_default='2', nullable=False),
    sa.Column('key_holder_count', sa.Integer(), server_default='3', nullable=False),
    sa.Column('platform_holds_share', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('search_terms', sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('budget >= 0', name=op.f('tender_budget_not_negative_check')),
    sa.CheckConstraint('key_threshold >= 1 AND key_threshold <= key_holder_count', name=op.f('tender_key_threshold_valid_check')),
    sa.ForeignKeyConstraint(['agent_id'], ['organisation.id'], name=op.f('tender_agent_id_fkey')),
    sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id'], name=op.f('tender_created_by_id_fkey')),
    sa.ForeignKeyConstraint(['tenderer_id'], ['organisation.id'], name=op.f('tender_tenderer_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('tender_pkey')),
    sa.UniqueConstraint('code', name=op.f('tender_code_key'))
    )
    op.create_index(op.f('tender_agent_id_idx'), 'tender', ['agent_id'], unique=False)
    op.create_index('tender_published_at_idx', 'tender', ['published_at'], unique=False)
    op.create_index('tender_search_terms_idx', 'tender', ['search_terms'], unique=False, postgresql_using='gin')
    op.create_index('tender_status_bid_deadline_idx', 'tender', ['status', 'bid_deadline_at'], unique=False)
    op.create_index(op.f('tender_tenderer_id_idx'), 'tender', ['tenderer_id'], unique=False)
    op.create_table('lot',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_no', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('budget', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('budget >= 0', name=op.f('lot_budget_not_negative_check')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('lot_tender_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('lot_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('lot_public_id_key')),
    sa.UniqueConstraint('tender_id', 'lot_no', name='lot_tender_id_lot_no_key')
    )
    op.create_index(op.f('lot_tender_id_idx'), 'lot', ['tender_id'], unique=False)
    op.create_table('bidder_registration',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=False),
    sa.Column('organisation_id', sa.BigInteger(), nullable=False),
    sa.Column('registered_by_id', sa.BigInteger(), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('bidder_registration_lot_id_fkey')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('bidder_registration_organisation_id_fkey')),
    sa.ForeignKeyConstraint(['registered_by_id'], ['app_user.id'], name=op.f('bidder_registration_registered_by_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('bidder_registration_tender_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('bidder_registration_pkey')),
    sa.UniqueConstraint('lot_id', 'organisation_id', name='bidder_registration_lot_id_org_key')
    )
    op.create_index(op.f('bidder_registration_lot_id_idx'), 'bidder_registration', ['lot_id'], unique=False)
    op.create_index(op.f('bidder_registration_organisation_id_idx'), 'bidder_registration', ['organisation_id'], unique=False)
    op.create_index(op.f('bidder_registration_tender_id_idx'), 'bidder_registration', ['tender_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('bidder_registration_tender_id_idx'), table_name='bidder_registration')
    op.drop_index(op.f('bidder_registration_organisation_id_idx'), table_name='bidder_registration')
    op.drop_index(op.f('bidder_registration_lot_id_idx'), table_name='bidder_registration')
    op.drop_table('bidder_registration')
    op.drop_index(op.f('lot_tender_id_idx'), table_name='lot')
    op.drop_table('lot')
    op.drop_index(op.f('tender_tenderer_id_idx'), table_name='tender')
    op.drop_index('tender_status_bid_deadline_idx', table_name='tender')
    op.drop_index('tender_search_terms_idx', table_name='tender', postgresql_using='gin')
    op.drop_index('tender_published_at_idx', table_name='tender')
    op.drop_index(op.f('tender_agent_id_idx'), table_name='tender')
    op.drop_table('tender')
    op.drop_table('tender_sequence')
