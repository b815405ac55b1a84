"""Trading: tender documents (content-addressed files), clarification questions and answers, amendments, and
the listing's keyset indexes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 09:25:52.429733
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # keyset listing in either sort order, and the OCDS feed by last update
    op.create_index('tender_listing_deadline_idx', 'tender', ['bid_deadline_at', 'id'], unique=False)
    op.create_index('tender_listing_published_idx', 'tender', ['published_at', 'id'], unique=False)
    op.create_index('tender_updated_at_idx', 'tender', ['updated_at', 'id'], unique=False)
    op.create_table('clarification',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('asked_by_org_id', sa.BigInteger(), nullable=False),
    sa.Column('asked_by_id', sa.BigInteger(), nullable=False),
    sa.Column('asked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_by_id', sa.BigInteger(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['answered_by_id'], ['app_user.id'], name=op.f('clarification_answered_by_id_fkey')),
    sa.ForeignKeyConstraint(['asked_by_id'], ['app_user.id'], name=op.f('clarification_asked_by_id_fkey')),
    sa.ForeignKeyConstraint(['asked_by_org_id'], ['organisation.id'], name=op.f('clarification_asked_by_org_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('clarification_tender_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('clarification_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('clarification_public_id_key'))
    )
    op.create_index(op.f('clarification_asked_by_org_id_idx'), 'clarification', ['asked_by_org_id'], unique=False)
    op.create_index(op.f('clarification_tender_id_idx'), 'clarification', ['tender_id'], unique=False)
    op.create_table('tender_amendment',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), server_default='', nullable=False),
    sa.Column('document_ids', sa.ARRAY(sa.String(length=16)), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opening_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['published_by_id'], ['app_user.id'], name=op.f('tender_amendment_published_by_id_fkey')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('tender_amendment_tender_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('tender_amendment_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('tender_amendment_public_id_key'))
    )
    op.create_index(op.f('tender_amendment_tender_id_idx'), 'tender_amendment', ['tender_id'], unique=False)
    op.create_table('tender_document',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('tender_id', sa.BigInteger(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('document_type', sa.String(length=40), server_default='biddingDocuments', nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('size_bytes > 0', name=op.f('tender_document_size_positive_check')),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('tender_document_tender_id_fkey')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['app_user.id'], name=op.f('tender_document_uploaded_by_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('tender_document_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('tender_document_public_id_key'))
    )
    op.create_index(op.f('tender_document_sha256_idx'), 'tender_document', ['sha256'], unique=False)
    op.create_index(op.f('tender_document_tender_id_idx'), 'tender_document', ['tender_id'], unique=False)


def downgrade() -> None:
    op.drop_index('tender_updated_at_idx', table_name='tender')
    op.drop_index('tender_listing_published_idx', table_name='tender')
    op.drop_index('tender_listing_deadline_idx', table_name='tender')
    op.drop_index(op.f('tender_document_tender_id_idx'), table_name='tender_document')
    op.drop_index(op.f('tender_document_sha256_idx'), table_name='tender_document')
    op.drop_table('tender_document')
    op.drop_index(op.f('tender_amendment_tender_id_idx'), table_name='tender_amendment')
    op.drop_table('tender_amendment')
    op.drop_index(op.f('clarification_tender_id_idx'), table_name='clarification')
    op.drop_index(op.f('clarification_asked_by_org_id_idx'), table_name='clarification')
    op.drop_table('clarification')
