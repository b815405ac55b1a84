"""Media plane: venue device accounts (the room cameras' unattended boxes) and their revocable credentials.

Revision ID: 0027
Revises: 0024
Create Date: 2026-12-02 02:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0024'
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'media_device',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('public_id', sa.String(16), nullable=False),
        sa.Column('user_id', sa.BigInteger(), sa.ForeignKey('app_user.id'), nullable=False),
        sa.Column('site_id', sa.BigInteger(), sa.ForeignKey('venue_site.id'), nullable=False),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('created_by_id', sa.BigInteger(), sa.ForeignKey('app_user.id'), nullable=False),
        sa.Column('created_at', TZ, server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint('public_id'),
        sa.UniqueConstraint('user_id'),
    )
    op.create_index(op.f('media_device_site_id_idx'), 'media_device', ['site_id'])
    op.create_table(
        'media_device_credential',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('public_id', sa.String(16), nullable=False),
        sa.Column('device_id', sa.BigInteger(), sa.ForeignKey('media_device.id'), nullable=False),
        sa.Column('secret_hash', sa.String(64), nullable=False),
        sa.Column('issued_by_id', sa.BigInteger(), sa.ForeignKey('app_user.id'), nullable=False),
        sa.Column('issued_at', TZ, server_default=sa.func.now(), nullable=False),
        sa.Column('revoked_at', TZ, nullable=True),
        sa.Column('revoked_by_id', sa.BigInteger(), sa.ForeignKey('app_user.id'), nullable=True),
        sa.Column('last_used_at', TZ, nullable=True),
        sa.UniqueConstraint('public_id'),
        sa.UniqueConstraint('secret_hash'),
    )
    op.create_index(op.f('media_device_credential_device_id_idx'), 'media_device_credential', ['device_id'])


def downgrade() -> None:
    op.drop_table('media_device_credential')
    op.drop_table('media_device')
