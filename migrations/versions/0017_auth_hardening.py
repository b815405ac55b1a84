"""Identity hardening: sealed TOTP secrets (wider column), the last accepted TOTP step, the account backoff's last
failure, and the demo marker.

Existing plaintext TOTP secrets are not touched here (a migration has no master secret): each is sealed at its
owner's next successful sign-in.

Revision ID: 0017
Revises: 0010
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column('app_user', 'totp_secret', type_=sa.Text(), existing_type=sa.String(length=64),
                    existing_nullable=True)
    op.add_column('app_user', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.add_column('login_throttle', sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'demo_marker',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seeded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_demo_marker')),
    )


def downgrade() -> None:
    op.drop_table('demo_marker')
    op.drop_column('login_throttle', 'last_failure_at')
    op.drop_column('app_user', 'totp_last_step')
    op.alter_column('app_user', 'totp_secret', type_=sa.String(length=64), existing_type=sa.Text(),
                    existing_nullable=True)
