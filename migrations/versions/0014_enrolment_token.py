"""Identity: one-time enrolment links for expert and staff accounts (stored as SHA-256, judged by the DB clock).

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-01 20:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0014'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'enrolment_token',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('public_id', sa.String(length=16), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.BigInteger(), nullable=True),
        sa.Column('expert_id', sa.BigInteger(), nullable=True),
        sa.Column('roles', postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column('created_by_id', sa.BigInteger(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('pending_totp_secret', sa.String(length=64), nullable=True),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("purpose IN ('expert_account', 'staff_account')",
                           name=op.f('enrolment_token_purpose_known_check')),
        sa.CheckConstraint("(purpose = 'expert_account' AND expert_id IS NOT NULL) OR "
                           "(purpose = 'staff_account' AND user_id IS NOT NULL)",
                           name=op.f('enrolment_token_target_present_check')),
        sa.CheckConstraint('expires_at > created_at', name=op.f('enrolment_token_expires_after_creation_check')),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('enrolment_token_user_id_fkey')),
        sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], name=op.f('enrolment_token_expert_id_fkey')),
        sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id'],
                                name=op.f('enrolment_token_created_by_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('enrolment_token_pkey')),
        sa.UniqueConstraint('public_id', name=op.f('enrolment_token_public_id_key')),
        sa.UniqueConstraint('token_hash', name=op.f('enrolment_token_token_hash_key')),
    )
    op.create_index(op.f('enrolment_token_user_id_idx'), 'enrolment_token', ['user_id'])
    op.create_index(op.f('enrolment_token_expert_id_idx'), 'enrolment_token', ['expert_id'])


def downgrade() -> None:
    op.drop_index(op.f('enrolment_token_expert_id_idx'), table_name='enrolment_token')
    op.drop_index(op.f('enrolment_token_user_id_idx'), table_name='enrolment_token')
    op.drop_table('enrolment_token')
